"""The one way the rest of the code announces changes to connected clients.

Events are sent only after the surrounding transaction commits, so a client never hears of a
change that was rolled back; a client that misses one catches up from the database.
"""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class CaseStatusEvent(TypedDict):
    type: Literal["case.status"]
    reference: str
    status: str


class QueueChangedEvent(TypedDict):
    type: Literal["queue.changed"]
    skill_id: int


def case_group(case_id: int) -> str:
    return f"case.{case_id}"


def queue_group(skill_id: int) -> str:
    return f"queue.{skill_id}"


def send_event_on_commit(group: str, event: CaseStatusEvent | QueueChangedEvent) -> None:
    payload = dict(event)

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, payload)
        except Exception:
            # The change is committed; a client that missed this event resyncs from the database.
            logger.exception("could not broadcast %s to %s", payload["type"], group)

    transaction.on_commit(send)

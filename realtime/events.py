"""The one way the rest of the code announces changes to connected clients.

Events are sent only after the surrounding transaction commits, so a client never hears of a
change that was rolled back; a client that misses one catches up from the database.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypedDict

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


class CaseMessageEvent(TypedDict):
    type: Literal["case.message"]
    message: dict[str, Any]


class CaseReadEvent(TypedDict):
    type: Literal["case.read"]
    user_id: int
    seq: int


class CasePresenceEvent(TypedDict):
    type: Literal["case.presence"]
    online: list[dict[str, Any]]


class UserLogoutEvent(TypedDict):
    type: Literal["user.logout"]


Event = CaseStatusEvent | QueueChangedEvent | CaseMessageEvent | CaseReadEvent | CasePresenceEvent | UserLogoutEvent

# Coordinators' dashboards listen here for every queue change.
DASHBOARD_GROUP = "dashboard"


def case_group(case_id: int) -> str:
    return f"case.{case_id}"


def queue_group(skill_id: int) -> str:
    return f"queue.{skill_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def send_event_on_commit(group: str, event: Event) -> None:
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

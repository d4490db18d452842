"""Background jobs of the chat: forgetting dead sockets, and e-mails to participants away from
the room."""

from __future__ import annotations

from celery import shared_task

from consult.models import Message
from consult.services import messages as chat
from jobs.base import Job


@shared_task(base=Job, name="realtime.tasks.purge_connections")
def purge_connections() -> int:
    return chat.connections_purge()


@shared_task(base=Job, name="realtime.tasks.notify_offline")
def notify_offline(message_id: int) -> int:
    # Safe to run twice: a participant e-mailed within the quiet period is not e-mailed again.
    message = (
        Message.objects.select_related("case__resident", "case__assignee__user").filter(pk=message_id).first()
    )
    if message is None:  # its case was deleted since
        return 0
    return chat.notify_offline(message=message)

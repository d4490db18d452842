"""Chat on a case: messages numbered per case, stored once per client id, broadcast after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.errors import CaseError, NotAllowed, WrongState
from consult.metrics import CHAT_MESSAGES
from consult.models import MESSAGE_MAX_LENGTH, Case, Document, Message, MessageKind, Status, User
from realtime.events import case_group, send_event_on_commit

CLIENT_ID_MAX_LENGTH = 64


def is_participant(case: Case, user: User) -> bool:
    """Who may talk in a case's room: its resident, its assignee, coordinators."""
    if not user.is_active:
        return False
    is_assignee = case.assignee is not None and case.assignee.user_id == user.pk
    return case.resident_id == user.pk or is_assignee or user.is_coordinator


def message_payload(message: Message) -> dict[str, Any]:
    """What clients receive for a message (they render system lines in their own language)."""
    document = message.document
    return {
        "seq": message.seq,
        "kind": message.kind,
        "sender_id": message.sender_id,
        "sender": message.sender.name if message.sender else "",
        "body": message.body,
        "client_id": message.client_id or "",
        "created_at": message.created_at.isoformat(),
        "detail": message.detail,
        "document": {
            "id": document.pk,
            "name": document.original_name,
            "url": reverse("document_download", args=[message.case.reference, document.pk]),
            "is_image": document.is_image,
            "is_audio": document.is_audio,
            "duration_ms": document.duration_ms,
        }
        if document
        else None,
    }


def storable(text: str) -> bool:
    """Whether every database can store `text`: PostgreSQL refuses NUL in text, and a lone UTF-16
    surrogate (valid in JSON as \\udXXX) is no character at all."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _next_seq(case_id: int) -> int:
    """Take the case's next message number: one statement, atomic on every database."""
    table = Case._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",  # noqa: S608
            [case_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise CaseError(_("This case no longer exists."))
    return int(row[0])


def _insert_numbered(message: Message) -> None:
    """Take the case's next number and insert the message in one statement: one round trip and
    one commit, atomic by itself (a refused insert takes its number back with it)."""
    cases, messages = Case._meta.db_table, Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH numbered AS (UPDATE {cases} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq)
            INSERT INTO {messages} (case_id, seq, kind, sender_id, body, document_id, client_id, detail, created_at)
            SELECT %s, last_seq, %s, %s, %s, %s, %s, '{{}}'::jsonb, %s FROM numbered
            RETURNING id, seq
            """,  # noqa: S608 - table names from the models, values as parameters
            [message.case_id, message.case_id, message.kind, message.sender_id, message.body, message.document_id,
             message.client_id, message.created_at],
        )
        row = cursor.fetchone()
    if row is None:
        raise CaseError(_("This case no longer exists."))
    message.pk, message.seq = row
    message._state.adding = False
    message._state.db = connection.alias


def _broadcast(message: Message) -> None:
    send_event_on_commit(case_group(message.case_id), {"type": "case.message", "message": message_payload(message)})


def message_post(
    *, case: Case, sender: User, body: str, client_id: str = "", document: Document | None = None
) -> tuple[Message, bool]:
    """Store a chat message and broadcast it after commit. Returns the message and whether it is
    new: a retry with the same client id returns the stored one (acknowledge it again).

    One statement on PostgreSQL: the number and the row together (their own commit); elsewhere two
    in a transaction. A retry is found by the insert it makes fail (the client id is unique per
    case and sender) rather than looked up before every message: a lookup built by the ORM for each
    message was a third of a daphne's busy time under load, for retries that are rare. The fields
    are checked here rather than by `full_clean()`, whose relation checks would each cost a query.
    """
    if not is_participant(case, sender):
        raise NotAllowed(_("Only the people on this case can write here."))
    if case.status in (Status.CLOSED, Status.WITHDRAWN):
        raise WrongState(_("This case is finished; the chat is closed."))
    body = (body or "").strip()
    if not body and document is None:
        raise CaseError(_("The message is empty."), code="empty")
    if len(body) > MESSAGE_MAX_LENGTH:
        raise CaseError(
            _("The message is too long: at most %(n)d characters.") % {"n": MESSAGE_MAX_LENGTH}, code="too_long"
        )
    if not storable(body):
        raise CaseError(_("The message contains characters that cannot be sent."), code="bad_characters")
    if len(client_id) > CLIENT_ID_MAX_LENGTH:
        raise CaseError(_("The message id is not valid."), code="client_id")
    if document is not None and document.case_id != case.pk:
        raise CaseError(_("That document is not on this case."), code="document")
    message = Message(
        case=case, sender=sender, body=body, document=document, client_id=client_id or None,
        created_at=timezone.now(),
    )
    try:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            _insert_numbered(message)
        else:
            with transaction.atomic():
                message.seq = _next_seq(case.pk)
                message.save(force_insert=True)
        _broadcast(message)
    except IntegrityError:
        # A retry: this client id was stored before (or by a copy that arrived at the same time).
        existing = Message.objects.filter(case=case, sender=sender, client_id=client_id).first()
        if not client_id or existing is None:
            raise
        return existing, False
    transaction.on_commit(CHAT_MESSAGES.inc)  # counted once stored (at once outside a transaction)
    return message, True


def message_system(*, case: Case, verb: str, actor: User | None, detail: dict[str, Any]) -> Message:
    """A status line in the room ("王芳 accepted the case"); numbered like any message, so a client
    that was away gets it on resync."""
    message = Message(
        case=case,
        seq=_next_seq(case.pk),
        kind=MessageKind.SYSTEM,
        sender=actor,
        detail={"verb": verb, **{k: v for k, v in detail.items() if isinstance(v, (str, int))}},
    )
    message.save(force_insert=True)
    _broadcast(message)
    return message


# What message_payload reads of a message, its sender and its document.
PAYLOAD_FIELDS = (
    "seq", "kind", "sender__name", "body", "document__original_name", "document__content_type",
    "document__duration_ms", "client_id", "detail", "created_at",
)


def messages_after(*, case: Case, seq: int, limit: int = 500) -> list[Message]:
    """A page of `case`'s messages after `seq`, for message_payload. The case is the caller's, not
    read again, and the sender and document bring only what the payload says: every socket of a
    restarted process asks for its page at once, and the ORM building the case's, the sender's and
    the document's every column cost more than the query (2.8 ms of CPU for an empty page)."""
    messages = list(
        Message.objects.filter(case=case, seq__gt=seq)
        .select_related("sender", "document")
        .only(*PAYLOAD_FIELDS)
        .order_by("seq")[:limit]
    )
    for message in messages:
        message.case = case
    return messages


def read_mark(*, case: Case, user: User, seq: int) -> int:
    """Record that `user` has read up to `seq` (never backwards). Returns the mark."""
    from realtime.models import ReadMark

    # Never past the last message: a client cannot mark the future read.
    last = Case.objects.filter(pk=case.pk).values_list("last_seq", flat=True).first() or 0
    seq = max(0, min(seq, last))
    mark, created = ReadMark.objects.get_or_create(case=case, user=user, defaults={"seq": seq})
    if not created and seq > mark.seq:
        ReadMark.objects.filter(pk=mark.pk, seq__lt=seq).update(seq=seq)
        mark.seq = seq
    send_event_on_commit(case_group(case.pk), {"type": "case.read", "user_id": user.pk, "seq": mark.seq})
    return mark.seq


# --- presence and offline notices -----------------------------------------------------------

ONLINE_WINDOW = timedelta(seconds=90)


def online_users(case: Case) -> list[dict[str, Any]]:
    from realtime.presence import online_on

    return online_on({case.pk})[case.pk]


def connection_touch(*, case: Case, user: User, channel_name: str) -> int:
    """Keep a socket's presence fresh; returns the case's last message number. A row that went
    missing is written again: on PostgreSQL presence is not kept through a database crash or a
    failover (realtime/migrations/0002), while the sockets stay open."""
    from realtime.models import Connection

    now = timezone.now()
    if not Connection.objects.filter(channel_name=channel_name).update(seen_at=now):
        Connection.objects.create(channel_name=channel_name, case=case, user=user, seen_at=now)
    return Case.objects.filter(pk=case.pk).values_list("last_seq", flat=True).first() or 0


def connections_purge() -> int:
    """Delete presence rows whose socket stopped saying it is alive (its process died without
    cleaning up). Returns how many."""
    from realtime.models import Connection

    deleted, _rows = Connection.objects.filter(seen_at__lt=timezone.now() - ONLINE_WINDOW).delete()
    return deleted


def offline_candidates(message: Message) -> list[User]:
    """Who might be told of `message` (by SMS, or e-mail if they chose it): the other active
    participants. Everyone has a phone, so there is always someone once the case is assigned."""
    case = message.case
    people = [case.resident]
    if case.assignee is not None:
        people.append(case.assignee.user)
    return [p for p in people if p.pk != message.sender_id and p.is_active]


def offline_notice_enqueue(*, message: Message) -> None:
    """Hand the notices about `message` to the participants away from the room to a background
    job (realtime.tasks.notify_offline), run settings.OFFLINE_NOTICE_DELAY_SECONDS later: who is
    away is known only after the message, and the chat acknowledgement waits for no notice. Call
    after the message is committed."""
    if not offline_candidates(message):
        return
    from jobs.base import queue_or_leave
    from realtime.tasks import notify_offline as job

    # The message stands; only the notice about it is lost.
    queue_or_leave(job, (message.pk,), backstop="no notice", countdown=settings.OFFLINE_NOTICE_DELAY_SECONDS or None)


def notify_offline(*, message: Message) -> int:
    """Tell the participants who are not in the room that a message arrived: a notice through the
    outbox (notices.services.notify), one per quiet period, not one per message. Returns how many
    notices were written."""
    from notices.kinds import NoticeKind
    from notices.links import case_link
    from notices.services import notify
    from realtime.models import Connection, OfflineNotice

    case = message.case
    people = offline_candidates(message)
    if not people:
        return 0
    online = set(
        Connection.objects.filter(
            case=case, user__in=people, seen_at__gte=timezone.now() - ONLINE_WINDOW
        ).values_list("user_id", flat=True)
    )
    now = timezone.now()
    quiet = timedelta(minutes=settings.OFFLINE_NOTICE_QUIET_MINUTES)
    sent = 0
    for person in people:
        if person.pk in online:
            continue
        with transaction.atomic():
            # Under the mark's row lock: two jobs for two messages at once write one notice.
            OfflineNotice.objects.get_or_create(case=case, user=person, defaults={"sent_at": now - quiet * 2})
            mark = OfflineNotice.objects.select_for_update().get(case=case, user=person)
            if mark.sent_at > now - quiet:
                continue
            notify(user=person, kind=NoticeKind.NEW_MESSAGE, case=case,
                   params={"case": case.reference, "link": case_link(case.pk)})
            mark.sent_at = now
            mark.save(update_fields=["sent_at"])
        sent += 1
    return sent

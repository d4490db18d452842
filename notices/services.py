"""The outbox: a notice is a row written in the transaction of the change it tells of, and
delivered by a job after that transaction commits.

Why no notice is lost: the row commits with the change or not at all, and a queued row whose job
never ran (the broker was down at commit, the job was lost) is picked up by the minute sweep
(notices.tasks.deliver_due). Why none is sent twice: a delivery first takes the row from `queued`
to `sending` in one conditional UPDATE (only one worker's statement matches), and only the worker
that took it calls the provider. Neither Alibaba Cloud's nor Tencent Cloud's SendSms takes an
idempotency key, so a worker that dies after the provider took the message but before the row
says `sent` leaves it `sending`: it is not sent again (at most once; a second SMS with the same
code or news is worse than a missing one that the case page still shows) and coordinators see it
listed as undetermined after SENDING_STUCK_AFTER.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notices.backends import SmsError, SmsMessage, SmsRejected, get_backend
from notices.kinds import masked, missing_params, render, subject, template_for
from notices.models import Channel, Notice, NoticePreference, NoticeStatus

logger = logging.getLogger(__name__)

# Tries in all before a notice is marked failed (the waits between them: NOTICE_RETRY_SECONDS,
# doubled each time: 30 s, 1, 2 and 4 minutes by default).
MAX_ATTEMPTS = 5
# A queued notice not taken by its job within this is handed out again by the sweep.
LOST_AFTER = timedelta(minutes=1)
# A notice still `sending` after this: its worker died mid-call; whether it arrived is unknown.
SENDING_STUCK_AFTER = timedelta(minutes=10)


def quiet_hours_end(now: datetime) -> datetime | None:
    """When the quiet hours around `now` end (local time), or None outside them."""
    start, end = settings.NOTICE_QUIET_START, settings.NOTICE_QUIET_END
    if start == end:
        return None
    local = timezone.localtime(now)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(end)), timezone.get_current_timezone())


def preference_for(user: Any) -> NoticePreference:
    preference = NoticePreference.objects.filter(user=user).first()
    return preference or NoticePreference(user=user)


def notify(
    *,
    user: Any = None,
    phone: str | None = None,
    kind: str,
    params: dict[str, Any],
    language: str | None = None,
    urgent: bool = False,
    case: Any = None,
    channel: str | None = None,
) -> Notice:
    """Write a notice to `user` (on the channel they chose) or to `phone` (an SMS to a number not
    yet anyone's, such as a sign-up code), to be delivered after the caller's transaction
    commits; nothing is sent if it rolls back. Call inside the transaction of the change.

    `params` are the kind's named parameters (notices/kinds.py). The language defaults to the
    user's. A person who opted out gets no notice but those they asked for (codes); an SMS that is
    not urgent waits for the end of the quiet hours. The row is returned in every case: `skipped`
    when nothing will be sent, and why in `error`.
    """
    template = template_for(kind)
    missing = missing_params(kind, params)
    if missing:
        raise ValueError(f"notice {kind} lacks parameters: {', '.join(missing)}")
    if user is None and not phone:
        raise ValueError("a notice needs a user or a phone number")
    urgent = urgent or template.urgent
    language = language or (user.language if user is not None else settings.LANGUAGE_CODE)
    status, error = NoticeStatus.QUEUED, ""
    if phone:
        channel, address = Channel.SMS, phone
    else:
        preference = preference_for(user)
        channel = channel or preference.channel
        address = user.email if channel == Channel.EMAIL else user.phone
        if channel == Channel.EMAIL and not address:
            channel, address = Channel.SMS, user.phone  # an e-mail choice without an address
        if preference.opted_out and not template.essential:
            status, error = NoticeStatus.SKIPPED, "the recipient opted out of notices"
    if status == NoticeStatus.QUEUED and not address:
        status, error = NoticeStatus.SKIPPED, "no address on this channel"
    send_after = None
    if status == NoticeStatus.QUEUED and channel == Channel.SMS and not urgent:
        send_after = quiet_hours_end(timezone.now())
    notice = Notice.objects.create(
        user=user, channel=channel, address=address or "", kind=kind, language=language,
        params={name: str(value) for name, value in params.items()}, urgent=urgent, case=case,
        status=status, error=error, send_after=send_after,
    )
    if status == NoticeStatus.QUEUED and send_after is None:
        transaction.on_commit(lambda: notice_enqueue(notice_id=notice.pk))
    return notice


def notice_enqueue(*, notice_id: int) -> None:
    """Hand a committed notice to its job. A broker that is down loses nothing: the row stays
    queued and the sweep hands it out within LOST_AFTER and a minute."""
    from jobs.base import queue_or_leave
    from notices.tasks import deliver

    queue_or_leave(deliver, (notice_id,), backstop="the sweep will send the notice")


def _claim(notice_id: int) -> Notice | None:
    now = timezone.now()
    taken = (
        Notice.objects.filter(pk=notice_id, status=NoticeStatus.QUEUED)
        .filter(Q(send_after__isnull=True) | Q(send_after__lte=now))
        .update(status=NoticeStatus.SENDING, attempts=F("attempts") + 1, sending_at=now, updated_at=now)
    )
    if not taken:
        return None
    return Notice.objects.select_related("user").get(pk=notice_id)


def _send(notice: Notice) -> tuple[str, str]:
    """Send through the channel's backend; returns (the backend, the provider's message id)."""
    if notice.channel == Channel.EMAIL:
        text = render(notice.kind, notice.params, notice.language)
        with translation.override(notice.language):
            name = notice.user.name if notice.user else ""
            body = render_to_string("emails/notice.txt", {"name": name, "text": text})
        try:
            send_mail(subject(notice.kind, notice.params, notice.language), body, settings.DEFAULT_FROM_EMAIL,
                      [notice.address])
        except Exception as error:  # SMTP faults of every kind: try again later
            raise SmsError(f"e-mail: {type(error).__name__}: {error}") from error
        return settings.EMAIL_BACKEND, ""
    backend = get_backend()
    message = SmsMessage(
        phone=notice.address, kind=notice.kind, params=dict(notice.params), language=notice.language,
        text=render(notice.kind, notice.params, notice.language), reference=str(notice.pk),
    )
    return settings.SMS_BACKEND, backend.send(message)


def notice_deliver(*, notice_id: int, retry_wait: timedelta) -> str:
    """Send one notice if it is due and nobody else is sending it. Returns what happened: `sent`,
    `retry` (failed; queued again after `retry_wait`), `failed` (for good) or `not due`."""
    notice = _claim(notice_id)
    if notice is None:
        return "not due"
    try:
        backend, message_id = _send(notice)
    except SmsError as error:
        final = isinstance(error, SmsRejected) or notice.attempts >= MAX_ATTEMPTS
        now = timezone.now()
        failures = [*notice.failures, {"at": now.isoformat(), "error": str(error)[:1000]}]
        Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENDING).update(
            status=NoticeStatus.FAILED if final else NoticeStatus.QUEUED,
            send_after=None if final else now + retry_wait,
            error=str(error)[:1000], failures=failures, updated_at=now,
            **({"params": masked(notice.kind, notice.params)} if final else {}),
        )
        logger.warning("notice %s try %d failed%s: %s", notice.pk, notice.attempts, " for good" if final else "",
                       error)
        return "failed" if final else "retry"
    now = timezone.now()
    Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENDING).update(
        status=NoticeStatus.SENT, sent_at=now, backend=backend, provider_message_id=message_id[:200], error="",
        params=masked(notice.kind, notice.params), updated_at=now,
    )
    return "sent"


def notices_due() -> list[int]:
    """Queued notices whose time has come but whose job has not taken them: held through the
    quiet hours, waiting between tries, or lost on the way to the broker."""
    now = timezone.now()
    return list(
        Notice.objects.filter(status=NoticeStatus.QUEUED)
        .filter(Q(send_after__lte=now) | Q(send_after__isnull=True, created_at__lte=now - LOST_AFTER))
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:1000]
    )


def notice_requeue(*, notice: Notice) -> bool:
    """Send a failed notice again (a coordinator, once the cause is fixed). Returns whether it was."""
    requeued = Notice.objects.filter(pk=notice.pk, status=NoticeStatus.FAILED).update(
        status=NoticeStatus.QUEUED, attempts=0, send_after=None, updated_at=timezone.now()
    )
    if requeued:
        transaction.on_commit(lambda: notice_enqueue(notice_id=notice.pk))
    return bool(requeued)


@transaction.atomic
def notice_preference_set(*, user: Any, channel: str, opted_out: bool, email: str = "") -> NoticePreference:
    """A person's choice of channel and whether they want notices; an e-mail choice needs an
    address (given here, or already on the account)."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    email = (email or "").strip()
    if channel == Channel.EMAIL and not (email or user.email):
        raise ValidationError(_("Give an e-mail address to receive notices by e-mail."))
    if email and email != user.email:
        user.email = email
        user.full_clean(exclude=["password"])
        user.save(update_fields=["email"])
    preference, _created = NoticePreference.objects.select_for_update().get_or_create(user=user)
    preference.channel, preference.opted_out = channel, opted_out
    preference.full_clean()
    preference.save()
    return preference

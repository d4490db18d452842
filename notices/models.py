from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notices.kinds import NoticeKind, render


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("e-mail")


class NoticeStatus(models.TextChoices):
    # Waiting for its job (or, held through quiet hours or between tries, until `send_after`).
    QUEUED = "queued", _("queued")
    # Handed to the provider by one worker. A notice left here means the worker died between the
    # provider's answer and this row: it may or may not have arrived, and is not sent again.
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    # Not sent: the recipient opted out, or has no address on the chosen channel.
    SKIPPED = "skipped", _("not sent")


class Notice(models.Model):
    """One notice to one person on one channel: written in the transaction of the change it tells
    of, delivered by a job after commit (notices.tasks.deliver). A retry works on the same row."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="notices",
    )
    # The address used, kept as it was: a later change of number does not rewrite history.
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    address = models.CharField(_("phone or e-mail"), max_length=254, blank=True)
    kind = models.CharField(_("kind"), max_length=40, choices=NoticeKind.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    urgent = models.BooleanField(_("urgent"), default=False)
    case = models.ForeignKey(
        "consult.Case", verbose_name=_("case"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=NoticeStatus.choices, default=NoticeStatus.QUEUED)
    # Calls made to the provider; `failures` keeps each failed one (time and error).
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    failures = models.JSONField(_("failed attempts"), default=list, blank=True)
    error = models.TextField(_("last error"), blank=True)
    backend = models.CharField(_("sent through"), max_length=200, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Not before this time: the end of quiet hours, or the next try after a failure.
    send_after = models.DateTimeField(_("not before"), null=True, blank=True)
    sending_at = models.DateTimeField(_("handed to the provider at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep of due notices and the coordinators' list of failed ones.
            models.Index(fields=["status", "send_after"], name="notice_status_idx"),
            models.Index(fields=["case", "created_at"], name="notice_case_idx", condition=Q(case__isnull=False)),
            models.Index(fields=["user", "kind", "created_at"], name="notice_user_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.address or self.user_id} ({self.status})"

    @property
    def text(self) -> str:
        return render(self.kind, self.params, self.language)


class NoticePreference(models.Model):
    """How a person wants to hear from the platform. Without a row: by SMS, everything."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notice_preference", verbose_name=_("user")
    )
    channel = models.CharField(_("send notices by"), max_length=10, choices=Channel.choices, default=Channel.SMS)
    # Codes the person asks for are still sent (kinds marked essential).
    opted_out = models.BooleanField(_("send me no notices"), default=False)

    class Meta:
        verbose_name = _("notice preference")
        verbose_name_plural = _("notice preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.channel}{' (off)' if self.opted_out else ''}"

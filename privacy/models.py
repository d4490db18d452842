"""Consent to sensitive personal information, kept with the exact text agreed to (PIPL arts. 28-30)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from consult.models import Case, Kind, User


class Purpose(models.TextChoices):
    # Health information is sensitive personal information (PIPL art. 28): it needs a separate
    # consent, given after being told why it is needed and how it is used (arts. 29, 30).
    HEALTH = "health", _("Health information for a medical consultation")
    # Giving a worker's dispute to the employer is a provision to another handler (art. 23).
    SHARE_EMPLOYER = "share_employer", _("Sharing a labour dispute with the employer")


# The consent each kind of case asks for at intake.
PURPOSE_OF_KIND = {Kind.MEDICAL: Purpose.HEALTH, Kind.LEGAL: Purpose.SHARE_EMPLOYER}


class ConsentText(models.Model):
    """One version of a consent text, in both languages. Never changed once published: a new
    wording is a new version, so every consent names the very words the person read."""

    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    version = models.PositiveIntegerField(_("version"))
    title_zh = models.CharField(_("title (Chinese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    body_zh = models.TextField(_("text (Chinese)"), blank=True, help_text=_("What is used, why, why it is needed."))
    body_en = models.TextField(_("text (English)"), blank=True)
    agree_zh = models.CharField(_("agreement sentence (Chinese)"), max_length=500)
    agree_en = models.CharField(_("agreement sentence (English)"), max_length=500)
    published_at = models.DateTimeField(_("published"), default=timezone.now)

    class Meta:
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")
        ordering = ["purpose", "-version"]
        constraints = [models.UniqueConstraint(fields=["purpose", "version"], name="consenttext_version_once")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} v{self.version}"

    def in_language(self, language: str | None = None) -> dict[str, str]:
        """The text as shown in `language` (the current one by default): title, body, agreement."""
        english = (language or get_language() or "").startswith("en")
        if english:
            return {"title": self.title_en, "body": self.body_en, "agree": self.agree_en}
        return {"title": self.title_zh, "body": self.body_zh, "agree": self.agree_zh}

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.in_language()["body"].split("\n\n") if p.strip()]


class ConsentChannel(models.TextChoices):
    PAGE = "page", _("intake page")
    API = "api", _("app (API)")
    # Given before the texts were versioned: the sentence of version 1, language not recorded.
    MIGRATED = "migrated", _("recorded before versioning")


class Consent(models.Model):
    """A consent given on a case: which text, in which language, by whom, when, from where."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="consents")
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="consents", verbose_name=_("text"))
    given_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("given by"))
    given_at = models.DateTimeField(_("given at"), default=timezone.now)
    language = models.CharField(_("language shown"), max_length=10, blank=True, choices=settings.LANGUAGES)
    channel = models.CharField(_("where"), max_length=10, choices=ConsentChannel.choices)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["given_at", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "purpose"], name="consent_once_per_case")]

    def __str__(self) -> str:
        return f"{self.case_id} {self.purpose} v{self.text_id}"

    def shown_text(self) -> dict[str, str]:
        """The words the person agreed to (Chinese when the language was not recorded)."""
        return self.text.in_language(self.language or "zh-hans")


class ErasureStatus(models.TextChoices):
    PENDING = "pending", _("waiting for a coordinator")
    APPROVED = "approved", _("approved: personal details removed")
    REFUSED = "refused", _("refused")


class ErasureRequest(models.Model):
    """A resident's request that a case's personal details be erased (PIPL art. 47), and how a
    coordinator of the case's domain answered it. Kept after the erasure: who asked, who decided,
    when, and the answer, as the record that the right was honoured."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="erasure_requests")
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("asked by"))
    reason = models.TextField(_("reason given"), max_length=1000, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ErasureStatus.choices, default=ErasureStatus.PENDING)
    created_at = models.DateTimeField(_("asked at"), default=timezone.now)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("decided by")
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # A refusal's reason; for an approval, anything the coordinator adds to what is always kept.
    answer = models.TextField(_("answer"), max_length=2000, blank=True)

    class Meta:
        verbose_name = _("erasure request")
        verbose_name_plural = _("erasure requests")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=models.Q(status="pending"), name="erasure_one_pending_per_case"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.status}"

    @property
    def is_pending(self) -> bool:
        return self.status == ErasureStatus.PENDING

"""One-time codes sent by SMS, and the counters that limit how many are sent."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Purpose(models.TextChoices):
    SIGNUP = "signup", _("sign-up")
    LOGIN = "login", _("log-in")
    RESET = "reset", _("password reset")
    CHANGE_PHONE = "change_phone", _("new phone number")


class PhoneCode(models.Model):
    """A code sent to a phone for one purpose. Only the newest code of a phone and purpose counts;
    it is kept hashed (Django's password hashers), so a copy of the database gives no live code."""

    phone = models.CharField(_("mobile phone"), max_length=11)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    code_hash = models.CharField(_("code (hashed)"), max_length=200)
    # Who asked for a new number: the code proves the new number, the account is theirs.
    user = models.ForeignKey(
        "consult.User", verbose_name=_("user"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    client_address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    created_at = models.DateTimeField(_("sent at"))
    expires_at = models.DateTimeField(_("expires at"))
    tries = models.PositiveSmallIntegerField(_("tries"), default=0)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("one-time code")
        verbose_name_plural = _("one-time codes")
        indexes = [models.Index(fields=["phone", "purpose", "-created_at"], name="phone_code_newest_idx")]

    def __str__(self) -> str:
        return f"{self.phone} · {self.get_purpose_display()}"


class CodeQuota(models.Model):
    """Codes sent on one local day to one phone number or from one client address. Counted by a
    conditional UPDATE, so two requests at the same moment can never both take the last one."""

    scope = models.CharField(_("number or address"), max_length=60)
    day = models.DateField(_("day"))
    sent = models.PositiveSmallIntegerField(_("codes sent"), default=0)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("code quota")
        verbose_name_plural = _("code quotas")
        constraints = [models.UniqueConstraint(fields=["scope", "day"], name="code_quota_once_a_day")]

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.sent}"

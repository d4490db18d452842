from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class JobFailure(models.Model):
    """A background job that failed for good: its retries are spent, or it raised something a
    retry cannot fix. One open row per job and arguments, counting every failed try, until it is
    resolved: by hand in the admin, or by the next run of the same job that succeeds."""

    task = models.CharField(_("background job"), max_length=200)
    args = models.TextField(_("arguments"), blank=True)
    error = models.TextField(_("last error"))
    attempts = models.PositiveIntegerField(_("failed tries"), default=0)
    first_failed_at = models.DateTimeField(_("first failed at"))
    last_failed_at = models.DateTimeField(_("last failed at"))
    resolved = models.BooleanField(_("marked resolved"), default=False)

    class Meta:
        verbose_name = _("failed job")
        verbose_name_plural = _("failed jobs")
        ordering = ["-last_failed_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "args"], condition=Q(resolved=False), name="job_failure_open_once")
        ]
        indexes = [models.Index(fields=["resolved", "-last_failed_at"], name="job_failure_open_idx")]

    def __str__(self) -> str:
        return f"{self.task} ({self.attempts})"

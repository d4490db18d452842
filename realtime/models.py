from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.models import Case, User


class Connection(models.Model):
    """One open socket in a case room. Kept in the database so every daphne process sees who is
    online; a socket whose process died stops counting once its heartbeat is old."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("open connection")
        verbose_name_plural = _("open connections")
        indexes = [models.Index(fields=["case", "seen_at"], name="connection_case_seen_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.case_id}"


class ReadMark(models.Model):
    """How far a participant has read a case's chat."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("read mark")
        verbose_name_plural = _("read marks")
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="read_mark_once")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.case_id}: {self.seq}"


class OfflineNotice(models.Model):
    """When a participant was last e-mailed about new messages on a case (one per quiet period)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField()

    class Meta:
        verbose_name = _("offline notice")
        verbose_name_plural = _("offline notices")
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="offline_notice_once")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.case_id}"

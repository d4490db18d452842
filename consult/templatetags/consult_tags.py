from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def duration_text(value: timedelta | None) -> str:
    """A wait as people say it: "3 days", "2 hours", "5 minutes"."""
    if value is None:
        return ""
    minutes = max(int(value.total_seconds() // 60), 1)
    if minutes >= 60 * 24:
        days = minutes // (60 * 24)
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    if minutes >= 60:
        hours = minutes // 60
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


@register.filter
def since(value: datetime | None) -> timedelta | None:
    return timezone.now() - value if value else None

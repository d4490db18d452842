from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Window
from django.utils import timezone

from notices.models import Notice, NoticeStatus
from notices.services import SENDING_STUCK_AFTER

# Failed notices stay on the coordinators' dashboard this long (the admin keeps them all).
FAILED_SHOWN_FOR = timedelta(days=7)


def notices_for_case(*, case: Any) -> list[Notice]:
    """What the platform told whom about `case`, oldest first (staff only: addresses show)."""
    return list(Notice.objects.filter(case=case).select_related("user").order_by("created_at", "id"))


def notices_needing_attention(*, kinds: Collection[str], limit: int = 10) -> list[Notice]:
    """Notices that failed after their tries (the last week), and those whose worker died while
    the provider had them (delivery unknown); each carries `total`, the number of them all. Those
    of a case only when its kind is in `kinds` (the coordinator's domains)."""
    now = timezone.now()
    return list(
        Notice.objects.filter(
            Q(status=NoticeStatus.FAILED, updated_at__gte=now - FAILED_SHOWN_FOR)
            | Q(status=NoticeStatus.SENDING, sending_at__lt=now - SENDING_STUCK_AFTER)
        )
        .filter(Q(case__isnull=True) | Q(case__kind__in=sorted(kinds)))
        .select_related("user", "case")
        .annotate(total=Window(Count("id")))
        .order_by("-updated_at")[:limit]
    )

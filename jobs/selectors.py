from __future__ import annotations

from django.db.models import Count, Window

from jobs.models import JobFailure


def job_failures_open(*, limit: int = 10) -> list[JobFailure]:
    """The latest failed jobs nobody has resolved; each carries `total`, the number of open ones
    (one query for the list and its count)."""
    return list(
        JobFailure.objects.filter(resolved=False)
        .annotate(total=Window(Count("id")))
        .order_by("-last_failed_at")[:limit]
    )

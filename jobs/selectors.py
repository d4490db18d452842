from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet, Window

from consult.models import Kind
from jobs.models import JobFailure


def job_failures_visible(user: Any, failures: QuerySet[JobFailure] | None = None) -> QuerySet[JobFailure]:
    """The failed jobs `user` may see. A job run with arguments worked on one notice or one message
    (a delivery, an offline notice) of some case, which its arguments and error may name: those
    are for platform-wide coordinators and superusers; a coordinator of some domains sees the
    failures of the platform's own jobs (sweeps, purges), and their domain's undelivered notices
    in the notices' admin."""
    failures = JobFailure.objects.all() if failures is None else failures
    if getattr(user, "coordinated_kinds", frozenset()) >= set(Kind.values):
        return failures
    return failures.filter(args="")


def job_failures_open(*, user: Any, limit: int = 10) -> list[JobFailure]:
    """The latest failed jobs nobody has resolved that `user` may see; each carries `total`, the
    number of open ones (one query for the list and its count)."""
    return list(
        job_failures_visible(user)
        .filter(resolved=False)
        .annotate(total=Window(Count("id")))
        .order_by("-last_failed_at")[:limit]
    )

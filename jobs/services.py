"""Writes about background jobs themselves: what failed, and that it recovered."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import JobFailure


def job_failure_record(*, task: str, args: str, error: str, attempts: int) -> JobFailure:
    """Count a job's failure on its open row (made when there is none)."""
    for _try in range(2):
        try:
            with transaction.atomic():
                now = timezone.now()
                failure = JobFailure.objects.select_for_update().filter(task=task, args=args, resolved=False).first()
                if failure is None:
                    failure = JobFailure(task=task, args=args, first_failed_at=now)
                failure.error = error
                failure.attempts += attempts
                failure.last_failed_at = now
                failure.full_clean(validate_constraints=False)
                failure.save()
                return failure
        except IntegrityError:
            # Another worker opened the row between our read and our insert: count on theirs.
            continue
    raise RuntimeError(f"could not record the failure of {task}")


def job_failures_resolve(*, task: str, args: str) -> int:
    """Close the open failure of a job that has now run through. Returns how many rows (0 or 1)."""
    return JobFailure.objects.filter(task=task, args=args, resolved=False).update(resolved=True)

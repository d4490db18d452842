"""Background jobs for personal information (scheduled in jobs/schedule.py)."""

from __future__ import annotations

from celery import shared_task

from consult import files
from jobs.base import PASSING_FAULTS, Job
from privacy.anonymise import anonymise_expired

# A run does this many cases at most: the rest are for the next run (a first run on an old
# database does not hold a worker for hours).
BATCH = 500


@shared_task(
    base=Job, name="privacy.tasks.anonymise_expired", autoretry_for=(*PASSING_FAULTS, files.StorageUnavailable)
)
def anonymise_expired_cases() -> int:
    return len(anonymise_expired(limit=BATCH))

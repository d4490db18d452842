"""Periodic jobs of the accounts (scheduled in jobs/schedule.py)."""

from __future__ import annotations

from celery import shared_task

from accounts.services import codes_purge
from jobs.base import Job


@shared_task(base=Job, name="accounts.tasks.purge_codes")
def purge_codes() -> int:
    return codes_purge()

"""Periodic jobs of the case core (scheduled in jobs/schedule.py). Each calls the service its
management command calls, and is safe to run twice."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

from celery import shared_task
from django.conf import settings

from consult import files
from consult.services import case_sweep_unaccepted, documents_sweep_orphans
from consult.services.cases import cases_fill_free_slots
from consult.services.documents import documents_sweep_staging
from consult.services.idempotency import idempotency_purge
from jobs.base import PASSING_FAULTS, Job

# Keys are kept this long: a resend or a retry within it still gets the first answer.
IDEMPOTENCY_KEEP = timedelta(hours=48)
ORPHAN_GRACE = timedelta(hours=1)


@shared_task(base=Job, name="consult.tasks.sweep_unaccepted")
def sweep_unaccepted() -> int:
    return case_sweep_unaccepted(timeout=timedelta(minutes=settings.ACCEPT_TIMEOUT_MINUTES))


@shared_task(base=Job, name="consult.tasks.fill_free_slots")
def fill_free_slots() -> int:
    return cases_fill_free_slots()


# A file store that does not answer is a passing fault too.
@shared_task(base=Job, name="consult.tasks.sweep_orphans", autoretry_for=(*PASSING_FAULTS, files.StorageUnavailable))
def sweep_orphans() -> dict[str, int]:
    rows, objects = documents_sweep_orphans(grace=ORPHAN_GRACE)
    return {"rows": rows, "objects": objects, "staged": documents_sweep_staging()}


@shared_task(base=Job, name="consult.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return idempotency_purge(older_than=IDEMPOTENCY_KEEP)


@shared_task(base=Job, name="consult.tasks.purge_sessions")
def purge_sessions() -> None:
    # What `manage.py clearsessions` does, for whichever session engine is configured.
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()

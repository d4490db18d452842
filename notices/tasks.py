"""Jobs of the outbox: deliver one notice, and hand out those due (scheduled in jobs/schedule.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from jobs.base import Job, queue_or_leave
from notices.services import MAX_ATTEMPTS, notice_deliver, notices_due


def retry_wait(retries: int) -> timedelta:
    return timedelta(seconds=settings.NOTICE_RETRY_SECONDS * 2**retries)


# The notice row counts its tries and decides when to give up (MAX_ATTEMPTS); Celery's own count
# only bounds the retries of passing database faults.
@shared_task(base=Job, bind=True, name="notices.tasks.deliver", max_retries=MAX_ATTEMPTS + 5)
def deliver(self: Job, notice_id: int) -> str:
    wait = retry_wait(int(self.request.retries or 0))
    outcome = notice_deliver(notice_id=notice_id, retry_wait=wait)
    if outcome == "retry":
        raise self.retry(countdown=wait.total_seconds())
    return outcome


@shared_task(base=Job, name="notices.tasks.deliver_due")
def deliver_due() -> int:
    due = notices_due()
    for notice_id in due:
        deliver.delay(notice_id)
    return len(due)


class _Batch:
    """When this process last queued the claims' notice job, and whether one is queued for the
    end of that window: at most two jobs a window, whatever the number of claims."""

    def __init__(self) -> None:
        self.window_ends = 0.0
        self.trailing = False


_batch = _Batch()


def claim_notify_soon(*, case_pk: int) -> None:
    """Have the resident of a claim just made told of it by a worker: at once for a lone claim,
    within CLAIM_NOTICE_BATCH_SECONDS under many. Each claim queuing its own job cost the claim
    more than the claim itself (the broker publish, under the GIL: 16 claimers at 0.30 of the raw
    statement, 0.13 with Redis as broker); so the first claim of a window queues the job that
    writes every notice claims owe (`claims_notify`), and the others of the window one more job
    for its end. The claim is committed before this is called, so that job finds it. A broker
    that is down loses nothing: the minute job writes what no worker did.

    Not locked: two threads racing here queue one job too many, which finds nothing to write."""
    now = time.monotonic()
    window = settings.CLAIM_NOTICE_BATCH_SECONDS
    if now >= _batch.window_ends:
        _batch.window_ends, _batch.trailing = now + window, False
        countdown = None
    elif not _batch.trailing:
        _batch.trailing = True
        # After the window's last claim, with room for a worker whose clock runs a little ahead.
        countdown = _batch.window_ends - now + CLOCK_MARGIN
    else:
        return
    queue_or_leave(claims_notify, (), countdown=countdown, backstop=f"the minute job will tell case {case_pk}")


CLOCK_MARGIN = 0.5


@shared_task(base=Job, name="notices.tasks.claims_notify")
def claims_notify() -> int:
    from notices.reminders import claims_notify as run

    return run()


@shared_task(base=Job, name="notices.tasks.reminders")
def reminders() -> dict[str, int]:
    from notices.reminders import date_reminders, failed_notify, overdue_notify, visit_reminders

    return {
        "overdue": overdue_notify(), "failed": failed_notify(), "visits": visit_reminders(), "dates": date_reminders()
    }

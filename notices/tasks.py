"""Jobs of the outbox: deliver one notice, and hand out those due (scheduled in jobs/schedule.py)."""

from __future__ import annotations

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


@shared_task(base=Job, name="notices.tasks.claim_notify")
def claim_notify(case_pk: int) -> bool:
    from notices.case_notices import claim_notify as run

    return run(case_pk=case_pk)


def claim_notify_soon(*, case_pk: int) -> None:
    """The resident's acceptance notice for a claim just made, by a worker within a second or two:
    written in the claim's request it cost the claim four times the claim itself (the notice's
    Python work under the GIL: 16 claimers went from 1,170 to 167 claims a second). A broker that
    is down loses nothing: the minute job `claims_notify` writes what no worker did."""
    queue_or_leave(claim_notify, (case_pk,), backstop="the minute job claims_notify will write the notice")


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

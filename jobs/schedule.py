"""The periodic jobs, written into django-celery-beat's tables at every migrate.

Beat runs them from the database (DatabaseScheduler), so an operator can change an interval or
switch a job off in the admin, and the change survives deploys: a job missing from the database is
created, one already there keeps its interval and its on/off switch (only the task it runs is set
again, in case the code moved it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every: timedelta
    description: str


PERIODIC = [
    Periodic(
        "accept-timeout sweep", "consult.tasks.sweep_unaccepted", timedelta(minutes=1),
        "Cases assigned but not accepted within ACCEPT_TIMEOUT_MINUTES go back to matching.",
    ),
    Periodic(
        "free slots", "consult.tasks.fill_free_slots", timedelta(minutes=1),
        "Waiting cases go to professionals on duty with a free slot the moment no service saw free "
        "(a capacity raised in the admin); going on duty or freeing a slot gives them at once.",
    ),
    Periodic(
        "dead presence rows", "realtime.tasks.purge_connections", timedelta(minutes=1),
        "Forget the presence of sockets whose server died without saying goodbye.",
    ),
    Periodic(
        "orphan sweep", "consult.tasks.sweep_orphans", timedelta(hours=1),
        "Document rows without a file, stored files without a row, parked intake files older than a day.",
    ),
    Periodic(
        "idempotency keys", "consult.tasks.purge_idempotency_keys", timedelta(hours=6),
        "Forget the one-time keys of forms and API calls older than two days.",
    ),
    Periodic("expired sessions", "consult.tasks.purge_sessions", timedelta(days=1), "Django's clearsessions."),
    Periodic(
        "one-time codes", "accounts.tasks.purge_codes", timedelta(hours=6),
        "Forget SMS codes older than two days and the code counts of past days.",
    ),
    Periodic(
        "notices due", "notices.tasks.deliver_due", timedelta(minutes=1),
        "Send notices held through the quiet hours, waiting for their next try, or whose job was lost.",
    ),
    Periodic(
        "claims accepted", "notices.tasks.claims_notify", timedelta(minutes=1),
        "Tell residents their case, taken from the line, was accepted, where the claim could not (its process died).",
    ),
    Periodic(
        "overdue and failed", "notices.tasks.reminders", timedelta(minutes=5),
        "Cases past their promise; failed notices; visits, follow-ups, payments and deadlines coming.",
    ),
    Periodic(
        "retention", "privacy.tasks.anonymise_expired", timedelta(days=1),
        "Anonymise closed and withdrawn cases ended more than PRIVACY_RETENTION_DAYS ago (manage.py "
        "anonymise_expired --dry-run says which).",
    ),
]


def schedule_install(*, using: str = "default") -> int:
    """Create the periodic jobs the database lacks. Returns how many were created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for job in PERIODIC:
        seconds = int(job.every.total_seconds())
        intervals = IntervalSchedule.objects.using(using)
        interval = intervals.filter(every=seconds, period=IntervalSchedule.SECONDS).first() or intervals.create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        task, new = PeriodicTask.objects.using(using).get_or_create(
            name=job.name, defaults={"task": job.task, "interval": interval, "description": job.description}
        )
        if not new and task.task != job.task:
            task.task = job.task
            task.save(update_fields=["task"])
        created += new
    return created

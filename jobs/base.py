"""The base every background job of the project runs on.

Jobs are idempotent (a sweep run twice removes nothing twice), so the broker may hand one out
again: acknowledged only once it is done (`acks_late`), and put back when the process running it
dies (`reject_on_worker_lost`). A passing fault (the database or Redis gone for a moment) is
retried with a growing wait; a job that still fails, or fails in a way no retry fixes, leaves a
`JobFailure` row the coordinators see on their dashboard and in the admin.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.exceptions
from celery import Task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# Faults that pass: a lost or restarting database or Redis.
PASSING_FAULTS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def arguments_text(args: Any, kwargs: Any) -> str:
    """A job's arguments as stable text: the same call always gives the same text."""
    if not args and not kwargs:
        return ""
    return json.dumps({"args": list(args or ()), "kwargs": dict(kwargs or {})}, sort_keys=True, default=str)


def queue_or_leave(job: Task, args: tuple[Any, ...], *, backstop: str, countdown: float | None = None) -> bool:
    """Queue `job` with `args`. A broker that is down loses nothing the caller committed: the
    work is left to `backstop` (said in the log line: a sweep, a periodic job, or nothing).
    Returns whether the job was queued."""
    from kombu.exceptions import OperationalError as BrokerDown

    try:
        job.apply_async(args, countdown=countdown)
    except BrokerDown:
        logger.warning("job %s%r not queued (broker down): %s", job.name, args, backstop)
        return False
    return True


class Job(Task):
    autoretry_for = PASSING_FAULTS
    # Waits of 2, 4, 8, 16 and 32 s: about a minute in all, the time a database takes to restart.
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = False
    max_retries = 5
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        from jobs.services import job_failure_record

        error = f"{type(exc).__name__}: {exc}"
        attempts = int(self.request.retries or 0) + 1
        logger.error("job %s[%s] failed after %d tries: %s", self.name, task_id, attempts, error)
        try:
            job_failure_record(task=self.name, args=arguments_text(args, kwargs), error=error, attempts=attempts)
        except Exception:
            # Most likely the database itself is down: the log line above is then all there is.
            logger.exception("job %s[%s]: its failure could not be recorded", self.name, task_id)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        from jobs.services import job_failures_resolve

        try:
            job_failures_resolve(task=self.name, args=arguments_text(args, kwargs))
        except Exception:
            logger.exception("job %s[%s]: its earlier failure could not be marked resolved", self.name, task_id)

"""Jobs that exist only for the tests of the jobs machinery; real workers load them with
`--include tests.jobs.probe`. They leave their traces in files, not in the database."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from django.db import OperationalError

from jobs.base import Job


@shared_task(base=Job, name="tests.jobs.probe.hold")
def hold(directory: str) -> None:
    """The first run writes its pid and holds (to be killed); a run after it writes `done`."""
    runs = Path(directory) / "runs"
    first = not runs.exists()
    with runs.open("a") as out:
        out.write(f"{os.getpid()}\n")
    if first:
        time.sleep(60)
    else:
        (Path(directory) / "done").write_text("done")


# The production jobs wait 2, 4, 8, 16 and 32 s between tries; here 1 and 2 s, the same mechanism.
@shared_task(base=Job, name="tests.jobs.probe.fail", retry_backoff=1, max_retries=2)
def fail(directory: str) -> None:
    with (Path(directory) / "tries").open("a") as out:
        out.write(f"{time.time()}\n")
    raise OperationalError("the database is restarting")


@shared_task(base=Job, name="tests.jobs.probe.request_id")
def request_id(directory: str) -> None:
    """Logs a line and writes the request id its run has (the one of the request that queued it)."""
    import logging

    from consult.logs import request_id as current

    logging.getLogger("tests.jobs.probe").warning("probe job ran")
    (Path(directory) / "request_id").write_text(current.get())

"""Real Celery workers and beat in subprocesses, on the broker the run is configured with: the
embedded pass on the filesystem transport `make run` uses, the services pass on Redis. Each test
has a queue of its own, so nothing queued elsewhere reaches its workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from consult.models import Case, Professional, Status, User
from jobs.models import JobFailure
from tests.cluster import HarnessError, spare_port, stop_process, tail, wait_for_port
from tests.live import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

CELERY = [sys.executable, "-m", "celery", "-A", "consult"]
WAIT = 20.0


class Jobs:
    """Workers, beat and `manage.py serve` for one test, sharing its queue and database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.queue = f"test-{uuid.uuid4().hex[:12]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "consult.settings",
            "DATABASE_URL": database_url(),
            "CELERY_QUEUE": self.queue,
            # A job of a worker killed whole is handed out again after this (production: an hour).
            "CELERY_VISIBILITY_TIMEOUT": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        }
        self.env.pop("CONSULT_REQUIRE_SERVICES", None)
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.directory / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((process, log))
        return process

    def worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(name, [
            *CELERY, "worker", "--loglevel", "INFO", "--without-mingle", "--without-gossip", "--concurrency", "1",
            "--include", "tests.jobs.probe", "--hostname", f"{name}-{self.queue}@%h",
        ])

    def call(self, task: str, *args: str) -> None:
        """Queue a job as an operator would (`celery call`), through the same broker."""
        import json

        subprocess.run(
            [*CELERY, "call", task, "--args", json.dumps(list(args)), "--queue", self.queue],
            cwd=ROOT, env=self.env, check=True, capture_output=True, timeout=30,
        )

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{tail(log)}" for _process, log in self.processes)

    def until(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            for process, log in self.processes:
                if process.poll() is not None and process.returncode not in (0, -signal.SIGKILL):
                    raise HarnessError(f"{log.name} exited with {process.returncode}:\n{tail(log)}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.logs()}")

    def stop(self) -> None:
        for process, _log in self.processes:
            if process.poll() is None:
                # Nothing to keep: not a warm shutdown (seconds on the filesystem broker), a kill.
                os.killpg(process.pid, signal.SIGKILL)
            stop_process(process)
        if settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL)
            client.delete(self.queue, f"_kombu.binding.{self.queue}")
        else:
            # The filesystem broker's folder of this test database (settings: var/celery/<database>).
            shutil.rmtree(ROOT / "var" / "celery" / Path(database_url()).stem, ignore_errors=True)


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    running = Jobs(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_make_run_serves_the_site_with_a_worker_and_beat_that_sweep_and_stop_together(
    jobs: Jobs, case: Case, doctor: Professional
) -> None:
    # An operator set the accept-timeout sweep to every second in the admin.
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="accept-timeout sweep").update(interval=every_second)
    Case.objects.filter(pk=case.pk).update(
        assigned_at=timezone.now() - timedelta(minutes=settings.ACCEPT_TIMEOUT_MINUTES + 1)
    )
    port = spare_port()
    serve = jobs.start("serve", [sys.executable, "manage.py", "serve", "--port", str(port)])
    wait_for_port(port, serve, jobs.processes[0][1], "manage.py serve", WAIT)

    # Beat sends the sweep, the worker runs it: the case is back in the queue.
    jobs.until(lambda: Case.objects.get(pk=case.pk).status == Status.WAITING, "the sweep to run")

    log = jobs.processes[0][1]
    started = [line for line in log.read_text().splitlines() if "started (pid" in line]
    pids = [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in started]
    assert len(pids) == 3
    serve.send_signal(signal.SIGINT)  # Ctrl-C
    assert serve.wait(timeout=WAIT) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_job_whose_process_is_killed_mid_run_is_run_again(jobs: Jobs, tmp_path: Path) -> None:
    jobs.worker()
    jobs.call("tests.jobs.probe.hold", str(tmp_path))
    runs = tmp_path / "runs"
    first = int(jobs.until(lambda: lines(runs), "the job to start")[0])

    os.kill(first, signal.SIGKILL)  # the pool process running the job

    jobs.until(lambda: (tmp_path / "done").exists(), "the job to run again")
    assert len(lines(runs)) == 2
    broker = "redis://" if settings.REDIS_URL else "filesystem://"  # the services pass runs on Redis
    assert f"transport:   {broker}" in jobs.processes[0][1].read_text()


@pytest.mark.skipif(not settings.REDIS_URL, reason="the filesystem broker keeps a worker's taken jobs in its memory")
def test_a_job_of_a_worker_killed_whole_is_run_by_the_next_worker(jobs: Jobs, tmp_path: Path) -> None:
    first_worker = jobs.worker("first")
    jobs.call("tests.jobs.probe.hold", str(tmp_path))
    runs = tmp_path / "runs"
    jobs.until(lambda: lines(runs), "the job to start")

    os.killpg(first_worker.pid, signal.SIGKILL)  # the worker and its pool, as a lost machine
    first_worker.wait(timeout=5)
    time.sleep(1.5)  # past the visibility timeout the test configured
    jobs.worker("second")

    jobs.until(lambda: (tmp_path / "done").exists(), "the next worker to run the job")
    assert len(lines(runs)) == 2


def test_a_failing_job_is_retried_with_growing_waits_then_shown_to_the_coordinators(
    jobs: Jobs, tmp_path: Path, coordinator: User, login: Callable[..., Client]
) -> None:
    jobs.worker()
    jobs.call("tests.jobs.probe.fail", str(tmp_path))

    failure = jobs.until(lambda: JobFailure.objects.filter(task="tests.jobs.probe.fail").first(), "the failure row")

    tries = [float(t) for t in lines(tmp_path / "tries")]
    assert len(tries) == 3  # the first try and max_retries=2
    assert tries[1] - tries[0] >= 1 and tries[2] - tries[1] >= 2  # waits of 1 s, then 2 s
    assert (failure.attempts, failure.resolved) == (3, False)
    assert failure.error == "OperationalError: the database is restarting"
    page = login(coordinator, language="en").get(reverse("dashboard")).text
    assert "1 background job failed and gave up retrying." in page
    assert "tests.jobs.probe.fail" in page

"""The periodic jobs, each run as a job on the test database, and the base every job runs on:
retried on passing faults with a growing wait, a job that fails for good recorded where the
coordinators see it."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from consult import files
from consult.celery import app
from consult.models import Case, IdempotencyKey, Professional, Status, User
from consult.tasks import purge_idempotency_keys, purge_sessions, sweep_orphans, sweep_unaccepted
from jobs.base import Job
from jobs.models import JobFailure
from jobs.schedule import PERIODIC, schedule_install
from realtime.models import Connection
from realtime.tasks import purge_connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": root, "base_url": None}},
    }
    return root


def aged(path: Path, age: timedelta) -> None:
    moment = (timezone.now() - age).timestamp()
    os.utime(path, (moment, moment))


def test_it_puts_a_case_not_accepted_in_time_back_to_matching(case: Case, doctor: Professional) -> None:
    fresh_minutes = django_settings.ACCEPT_TIMEOUT_MINUTES - 1
    Case.objects.filter(pk=case.pk).update(assigned_at=timezone.now() - timedelta(minutes=fresh_minutes))
    sweep_unaccepted.delay()
    assert Case.objects.get(pk=case.pk).status == Status.ASSIGNED

    Case.objects.filter(pk=case.pk).update(assigned_at=timezone.now() - timedelta(minutes=fresh_minutes + 2))
    sweep_unaccepted.delay()
    sweep_unaccepted.delay()  # a second run finds nothing more to do

    row = Case.objects.get(pk=case.pk)
    assert (row.status, row.assignee) == (Status.WAITING, None)  # the only doctor on duty timed out
    assert list(row.declined_by.all()) == [doctor]


def test_it_forgets_presence_rows_whose_socket_stopped_beating(case: Case, alice: User, doctor: Professional) -> None:
    Connection.objects.create(case=case, user=alice, channel_name="alive", seen_at=timezone.now())
    Connection.objects.create(
        case=case, user=doctor.user, channel_name="dead", seen_at=timezone.now() - timedelta(minutes=5)
    )

    purge_connections.delay()

    assert list(Connection.objects.values_list("channel_name", flat=True)) == ["alive"]


def test_it_removes_parked_intake_files_older_than_a_day_and_orphans(local_storage: Path, case: Case) -> None:
    stored = {
        "staging/7/old": timedelta(hours=25),  # its token has expired: no form can adopt it
        "staging/7/young": timedelta(hours=23),
        f"cases/{case.pk}/orphan": timedelta(hours=2),  # no document row, past the grace
    }
    for key, age in stored.items():
        files.store(key, b"bytes")
        aged(local_storage / key, age)

    sweep_orphans.delay()

    assert files.stored_keys("staging") == ["staging/7/young"]
    assert files.stored_keys("cases") == []


def test_the_orphan_command_sweeps_parked_files_too(local_storage: Path) -> None:
    files.store("staging/3/old", b"parked")
    aged(local_storage / "staging/3/old", timedelta(days=2))

    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)

    assert out.getvalue().splitlines()[-1] == "1 parked intake file(s) removed"
    assert files.stored_keys("staging") == []


def test_it_forgets_idempotency_keys_older_than_two_days(alice: User) -> None:
    old = IdempotencyKey.objects.create(
        user=alice, key="old", endpoint="x", status=201, created_at=timezone.now() - timedelta(hours=49)
    )
    IdempotencyKey.objects.create(user=alice, key="recent", endpoint="x", status=201)

    purge_idempotency_keys.delay()

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    assert not IdempotencyKey.objects.filter(pk=old.pk).exists()


def test_it_removes_expired_sessions_only(alice: User) -> None:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    live, expired = store(), store()
    live["n"] = expired["n"] = 1
    live.create()
    expired.set_expiry(-60)
    expired.create()

    purge_sessions.delay()

    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def test_every_periodic_job_is_in_the_database_once_and_keeps_an_operators_interval() -> None:
    rows = {row.name: row for row in PeriodicTask.objects.select_related("interval")}
    for job in PERIODIC:
        assert rows[job.name].task == job.task
        assert rows[job.name].interval.every == job.every.total_seconds()
        assert job.task in app.tasks, f"{job.task} is scheduled but no such job exists"

    sweep = rows["accept-timeout sweep"]
    sweep.interval = type(sweep.interval).objects.create(every=5, period="seconds")
    sweep.enabled = False
    sweep.save()
    assert schedule_install() == 0  # what migrate runs: nothing new, the operator's choice kept

    again = PeriodicTask.objects.get(name="accept-timeout sweep")
    assert (again.interval.every, again.enabled) == (5, False)
    assert PeriodicTask.objects.filter(name__in=[j.name for j in PERIODIC]).count() == len(PERIODIC)


def test_every_job_retries_passing_faults_with_a_growing_wait_and_survives_a_lost_worker() -> None:
    for job in PERIODIC:
        task = app.tasks[job.task]
        assert isinstance(task, Job)
        assert OperationalError in task.autoretry_for
        assert task.acks_late and task.reject_on_worker_lost
        waits = [
            get_exponential_backoff_interval(
                factor=task.retry_backoff, retries=n, maximum=task.retry_backoff_max, full_jitter=task.retry_jitter
            )
            for n in range(task.max_retries)
        ]
        assert waits == [2, 4, 8, 16, 32]


def test_a_job_that_fails_is_recorded_once_counted_and_resolved_by_its_next_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(**kwargs: Any) -> int:
        raise ValueError("a bug, not a passing fault")

    monkeypatch.setattr("consult.tasks.idempotency_purge", broken)
    for _run in range(2):
        result = purge_idempotency_keys.apply()
        assert result.failed()

    failure = JobFailure.objects.get()
    assert (failure.task, failure.attempts, failure.resolved) == ("consult.tasks.purge_idempotency_keys", 2, False)
    assert failure.error == "ValueError: a bug, not a passing fault"
    assert failure.first_failed_at <= failure.last_failed_at

    monkeypatch.undo()
    assert purge_idempotency_keys.apply().successful()
    assert JobFailure.objects.get().resolved


def test_the_dashboard_lists_failed_jobs_in_the_coordinators_language(
    coordinator: User, login: Callable[..., Client]
) -> None:
    assert "No background job has failed." in login(coordinator, language="en").get(reverse("dashboard")).text
    now = timezone.now()
    JobFailure.objects.create(
        task="consult.tasks.sweep_orphans", error="OperationalError: server closed the connection", attempts=6,
        first_failed_at=now, last_failed_at=now,
    )
    JobFailure.objects.create(
        task="consult.tasks.purge_sessions", error="old", attempts=1, first_failed_at=now, last_failed_at=now,
        resolved=True,
    )

    english = login(coordinator, language="en").get(reverse("dashboard")).text
    chinese = login(coordinator, language="zh-hans").get(reverse("dashboard")).text

    assert "1 background job failed and gave up retrying." in english
    assert "consult.tasks.sweep_orphans" in english and "server closed the connection" in english
    assert "consult.tasks.purge_sessions" not in english  # resolved
    assert "有 1 个后台任务失败，且已停止重试。" in chinese

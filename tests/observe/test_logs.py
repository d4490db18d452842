"""Request ids: answered in X-Request-ID, on every log line of the request (as JSON lines), taken
from a trusted proxy only, carried into the jobs a request queues (a real worker) and onto a
socket's log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from consult.logs import JsonFormatter, RequestIdFilter, RequestIdMiddleware
from consult.models import Case, User
from tests.jobs.test_worker import Jobs
from tests.live import ROOT, database_url
from tests.realtime.conftest import Connect, room_path

FORGED = "forged-by-a-client"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the configured console handler writes (LOGGING: the request id filter), as JSON lines."""
    console = next(h for h in logging.getLogger().handlers if any(isinstance(f, RequestIdFilter) for f in h.filters))
    assert isinstance(console, logging.StreamHandler)
    buffer = io.StringIO()
    old_stream, old_formatter = console.setStream(buffer), console.formatter
    console.setFormatter(JsonFormatter())
    try:
        yield buffer
    finally:
        console.setStream(old_stream)
        console.setFormatter(old_formatter)


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_it_answers_the_request_id_and_writes_it_on_the_requests_log_lines(log_lines: io.StringIO) -> None:
    first = Client().get("/health/live", HTTP_HOST="not-our-site.example")  # Django logs the bad host
    second = Client().get("/health/live")

    assert first.status_code == 400
    ids = first["X-Request-ID"], second["X-Request-ID"]
    assert len(ids[0]) == 32 and ids[0] != ids[1]
    bad_host = [line for line in parsed(log_lines) if line["logger"] == "django.security.DisallowedHost"]
    assert [line["request_id"] for line in bad_host] == [ids[0]]
    assert bad_host[0]["level"] == "ERROR" and "not-our-site.example" in bad_host[0]["message"]


@pytest.mark.django_db
def test_it_ignores_a_clients_request_id_without_trusted_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXIES = 0
    answered = Client().get("/health/live", HTTP_X_REQUEST_ID=FORGED)["X-Request-ID"]
    assert answered != FORGED and len(answered) == 32


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent", "kept"),
    [("a1b2-c3d4", True), ("x" * 64, True), ("x" * 65, False), ("bad id", False), ("a\nb", False), ("é", False)],
)
def test_it_takes_a_trusted_proxys_request_id_only_short_and_plain(settings: Any, sent: str, kept: bool) -> None:
    settings.TRUSTED_PROXIES = 1
    answered = Client().get("/health/live", HTTP_X_REQUEST_ID=sent)["X-Request-ID"]
    assert (answered == sent) is kept


@pytest.mark.django_db(transaction=True)
def test_a_job_queued_in_a_request_logs_that_requests_id_in_a_real_worker(
    jobs: Jobs,
    tmp_path: Path,
) -> None:
    from consult.celery import app
    from tests.jobs.probe import request_id as probe

    jobs.env["LOG_FORMAT"] = "json"
    jobs.worker()
    app.conf.task_always_eager = False  # for this one job: the request queues it on the broker
    # The worker's broker: the test database's folder when the broker is a folder (settings).
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = ROOT / "var" / "celery" / Path(database_url()).stem
        (folder / "control").mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
        }

    def view(request: HttpRequest) -> HttpResponse:
        with app.connection_for_write(transport_options=options) as broker:
            probe.apply_async((str(tmp_path),), queue=jobs.queue, connection=broker)
        return HttpResponse("queued")

    try:
        response = RequestIdMiddleware(view)(RequestFactory().get("/"))
    finally:
        app.conf.task_always_eager = True  # as every other test runs jobs (tests/conftest.py)
    sent = response["X-Request-ID"]

    ran = jobs.until(lambda: (tmp_path / "request_id").exists() and (tmp_path / "request_id").read_text(), "the job")
    assert ran == sent
    worker_log = jobs.processes[0][1].read_text()
    probe_lines = [json.loads(line) for line in worker_log.splitlines() if "probe job ran" in line]
    assert [line["request_id"] for line in probe_lines] == [sent], worker_log[-2000:]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_sockets_log_lines_carry_its_connection_id(
    connect: Connect,
    alice: User,
    case: Case,
    log_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from realtime import consumers

    async def broken(self: Any, content: dict[str, Any]) -> None:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(consumers.CaseRoomConsumer, "on_ping", broken)
    sockets = [await connect(alice, room_path(case.reference)) for _ in range(2)]
    for socket in sockets:
        await socket.send_json_to({"type": "ping"})
        frame = await socket.receive_json_from(timeout=2)
        while frame["type"] != "error":
            frame = await socket.receive_json_from(timeout=2)
        assert frame["code"] == "server_error"

    failed = [line for line in parsed(log_lines) if line["message"] == "case room frame failed"]
    ids = [line["request_id"] for line in failed]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("ws-") for i in ids), failed
    assert "RuntimeError: a bug in a handler" in failed[0]["exc_info"]

"""/health/live and /health/ready, as a load balancer sees them: embedded (everything answers), and
on the production shape (a real daphne, its own Redis stopped and started again)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.cluster import DaphneProcess, RedisServer, production_env
from tests.live import database_url

CHECKS = {"database", "cache", "channel_layer", "storage", "broker"}


@pytest.mark.django_db
def test_it_answers_ready_with_every_dependency_named_when_all_answer() -> None:
    started = time.monotonic()
    response = Client().get("/health/ready")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")}
    assert elapsed < 1.0, f"a balancer polls every few seconds: {elapsed:.2f} s"


@pytest.mark.django_db
def test_it_answers_live_and_ready_without_a_session_a_cookie_or_a_cache() -> None:
    client = Client()
    for path in ("/health/live", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert not response.cookies, path
        assert "no-store" in response["Cache-Control"]
    assert client.get("/health/live").json() == {"status": "ok"}
    from django.contrib.sessions.models import Session

    assert not Session.objects.exists()


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_is_not_redirected_to_https_but_the_pages_are() -> None:
    client = Client()
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert client.get("/").status_code == 301


@pytest.mark.django_db
def test_it_still_refuses_a_host_that_is_not_allowed() -> None:
    # A balancer probing by address sends the site's Host header (README): nothing is loosened.
    assert Client().get("/health/live", HTTP_HOST="10.9.8.7").status_code == 400


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _until(url: str, status: int, timeout: float = 20.0) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    seen: tuple[int, dict[str, Any]] | None = None
    while time.monotonic() - started < timeout:
        seen = _get(url)
        if seen[0] == status:
            return seen[1], time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {status} within {timeout} s; last {seen}")


@pytest.mark.skipif(not settings.REDIS_URL, reason="the production shape: Redis, PostgreSQL (services pass)")
@pytest.mark.django_db(transaction=True)
def test_it_says_not_ready_naming_redis_parts_while_redis_is_down_and_live_throughout(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    daphne = DaphneProcess(production_env(redis.url, database_url()), tmp_path, "daphne")
    try:
        daphne.start().wait()
        base = f"http://127.0.0.1:{daphne.port}"
        assert _get(base + "/health/ready") == (200, {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")})

        redis.stop()
        body, after = _until(base + "/health/ready", 503)
        down = {name for name, state in body["checks"].items() if state == "unavailable"}
        assert {"cache", "channel_layer", "broker"} <= down, body  # all three are on REDIS_URL
        assert body["checks"]["database"] == body["checks"]["storage"] == "ok"
        assert _get(base + "/health/live") == (200, {"status": "ok"})
        started = time.monotonic()
        _get(base + "/health/ready")
        probe = time.monotonic() - started

        redis.start()  # the same port
        _body, back = _until(base + "/health/ready", 200)
        log = daphne.log.read_text(errors="replace")
        print(
            f"\nready -> 503 in {after:.2f} s after Redis stopped; a probe then took {probe:.2f} s; "
            f"200 again {back:.2f} s after it started"
        )
        assert probe < settings.HEALTH_CHECK_SECONDS + 1.5
        # Logged once when it stopped being ready and once when it was again, as JSON lines.
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        changes = [line["message"] for line in lines if line["logger"] == "consult.health"]
        assert len(changes) == 2 and changes[0].startswith("not ready: ") and changes[1] == "ready again", changes
        assert "Traceback" not in log
    finally:
        daphne.stop()
        redis.stop()

"""Optional error reports: nothing without SENTRY_DSN; with one, an exception in a view reaches the
(loopback) Sentry server without the request's body, cookies or personal headers."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.live import ROOT, database_url

SECRET_BODY = "resident-said-something-private"
SECRET_COOKIE = "session-cookie-value-1234"
SECRET_TOKEN = "Token abcdef0123456789"

CLIENT = f"""
import django
django.setup()
from django.test import Client
import sentry_sdk

client = Client(raise_request_exception=False)
client.cookies["sessionid"] = "{SECRET_COOKIE}"
answer = client.post("/boom/", {{"note": "{SECRET_BODY}"}}, HTTP_AUTHORIZATION="{SECRET_TOKEN}", HTTP_HOST="127.0.0.1",
                     HTTP_X_FORWARDED_FOR="198.51.100.7")
print("status", answer.status_code, answer["X-Request-ID"])
sentry_sdk.flush(10)
"""


class Collector(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        self.server.received.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_it_initialises_nothing_without_a_dsn() -> None:
    import sentry_sdk

    assert not os.environ.get("SENTRY_DSN")
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.django_db(transaction=True)
def test_it_reports_a_views_exception_without_the_body_cookies_or_personal_headers(
    sentry_server: ThreadingHTTPServer,
) -> None:
    port = sentry_server.server_address[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.observe.sentry_settings",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{port}/1",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CONSULT_REQUIRE_SERVICES", None)
    run = subprocess.run(
        [sys.executable, "-c", CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    status, request_id = run.stdout.split()[1:3]
    assert status == "500"

    received = b"\n".join(sentry_server.received)  # type: ignore[attr-defined]
    items = [json.loads(line) for line in received.splitlines() if line.strip().startswith(b"{")]
    events = [item for item in items if item.get("exception")]
    assert len(events) == 1, received[:2000]
    event = events[0]
    assert event["exception"]["values"][-1]["value"] == "the view failed"
    assert event["tags"]["request_id"] == request_id
    assert event["transaction"] == "/boom/"
    text = received.decode(errors="replace")
    for secret in (SECRET_BODY, SECRET_COOKIE, "abcdef0123456789", "198.51.100.7"):
        assert secret not in text, secret
    assert set(event["request"]) <= {"method", "url", "headers"}
    assert "user" not in event


def test_it_keeps_of_a_request_only_its_method_url_and_harmless_headers() -> None:
    # What the ASGI integration gathers under daphne (the test client above goes around it).
    from consult.sentry import scrub

    event = {
        "request": {
            "method": "POST",
            "url": "https://consult.example.org/cases/M-1234/",
            "query_string": "phone=13800000000",
            "data": {"note": SECRET_BODY},
            "cookies": {"sessionid": SECRET_COOKIE},
            "env": {"REMOTE_ADDR": "198.51.100.7"},
            "headers": {
                "Cookie": f"sessionid={SECRET_COOKIE}",
                "Authorization": SECRET_TOKEN,
                "X-Forwarded-For": "198.51.100.7",
                "Referer": "https://consult.example.org/track/?ref=M-1234",
                "User-Agent": "Mozilla/5.0",
                "Accept-Language": "zh-hans",
            },
        },
        "user": {"ip_address": "198.51.100.7"},
        "breadcrumbs": {"values": [{"message": SECRET_BODY}]},
    }
    assert scrub(event, {}) == {
        "request": {
            "method": "POST",
            "url": "https://consult.example.org/cases/M-1234/",
            "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "zh-hans"},
        },
    }

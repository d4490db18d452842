"""While PostgreSQL or Redis is down, pages and the API answer 503 with Retry-After in the
request's language (the API in its one error shape), log it once, and answer normally as soon as
the service is back; any other failure is a translated 500 page that needs no database.

The outage tests run a real daphne in a subprocess: its database is a PostgreSQL port that
refuses connections (a loopback proxy in front of the test database when that is PostgreSQL, so
it can come back), its cache a redis-server of the test's own, stopped and started again. The
shared PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError, connection
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from consult import selectors
from consult.models import User
from tests.cluster import (
    HOST,
    RedisServer,
    TcpProxy,
    proxied_database_url,
    spare_port,
    stop_process,
    wait_for_port,
)
from tests.conftest import PASSWORD
from tests.live import DAPHNE, database_url

START_TIMEOUT = 20.0

PAGE_ZH = "服务暂时无法使用"
PAGE_EN = "The service is temporarily unavailable"
API_ZH = "服务暂时无法使用，请过一分钟再试。"
API_EN = "The service is temporarily unavailable. Please try again in a minute."
ERROR_ZH = "我们这边出了问题"
ERROR_EN = "Something went wrong on our side"
# The one line the server logs per request it answers with 503.
LOGGED = "answered 503"


# --- helpers: ports, our own servers, plain HTTP ------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Server:
    """A daphne serving the project with the given environment, logging warnings and up."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.port = spare_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = directory / f"daphne-{self.port}.log"
        outer = {k: v for k, v in os.environ.items() if k not in ("CONSULT_REQUIRE_SERVICES", "REDIS_URL", "DEBUG")}
        self.env = {
            **outer, "DJANGO_SETTINGS_MODULE": "consult.settings", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [DAPHNE, "-b", HOST, "-p", str(self.port), "consult.asgi:application"],
            cwd=settings.BASE_DIR, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, self.log, "daphne", START_TIMEOUT)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def fetch(self, path: str, language: str = "zh-hans", method: str = "GET", body: Any = None,
              headers: dict[str, str] | None = None) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.url + path, data=data, method=method,
            headers={"Accept-Language": language, **({"Content-Type": "application/json"} if data else {}),
                     **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read().decode())


@contextmanager
def serving(directory: Path, **env: str) -> Iterator[Server]:
    server = Server(directory, **env)
    try:
        yield server.start()
    finally:
        server.stop()


def assert_page_unavailable(answer: Answer, language: str) -> None:
    assert answer.status == 503, answer.text[:2000]
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers["Content-Type"].startswith("text/html")
    if language == "zh-hans":
        assert PAGE_ZH in answer.text and PAGE_EN not in answer.text
        assert 'lang="zh-hans"' in answer.text
    else:
        assert PAGE_EN in answer.text and PAGE_ZH not in answer.text
        assert 'lang="en"' in answer.text
    # Branded, and nothing of the server's insides.
    assert ("乡镇咨询服务" if language == "zh-hans" else "Township Consultation Service") in answer.text
    assert "Traceback" not in answer.text and "Error" not in answer.text


def assert_api_unavailable(answer: Answer, language: str) -> None:
    assert answer.status == 503, answer.text[:2000]
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {
        "error": {"code": "service_unavailable", "message": API_ZH if language == "zh-hans" else API_EN, "fields": {}}
    }


def check_every_kind_of_request(server: Server, api_paths: list[tuple[str, str, Any, dict[str, str]]],
                                page: str) -> int:
    """Pages in both languages and each API request in both; returns how many were answered."""
    for language in ("zh-hans", "en"):
        assert_page_unavailable(server.fetch(page, language), language)
        for method, path, body, headers in api_paths:
            assert_api_unavailable(server.fetch(path, language, method, body, headers), language)
    return 2 * (1 + len(api_paths))


def assert_logged_once_each(server: Server, answered: int) -> None:
    log = server.logged()
    assert log.count(LOGGED) == answered, log[-3000:]
    # One line a request, not a traceback storm.
    assert "Traceback" not in log, log[-3000:]


# --- PostgreSQL down ------------------------------------------------------------------------------

API_WHILE_DB_DOWN: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/api/v1/services/", None, {}),
    # Token authentication itself needs the database.
    ("GET", "/api/v1/cases/", None, {"Authorization": "Token 0123456789abcdef0123456789abcdef"}),
]


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_answer_503_in_the_request_language_while_postgresql_refuses_connections(
    tmp_path: Path,
) -> None:
    nobody = spare_port()  # nothing listens here: every connection is refused
    with serving(tmp_path, DATABASE_URL=f"postgres://postgres@{HOST}:{nobody}/consult_outage") as server:
        answered = check_every_kind_of_request(server, API_WHILE_DB_DOWN, "/")
        assert_logged_once_each(server, answered)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="stops and restarts a PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_answer_again_as_soon_as_postgresql_is_back(tmp_path: Path) -> None:
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or HOST, int(db["PORT"] or 5432))
    url = proxied_database_url(proxy)
    try:
        # Persistent connections: the outage cuts a connection the server holds, not only new ones.
        with serving(tmp_path, DATABASE_URL=url, DB_CONN_MAX_AGE="60") as server:
            assert server.fetch("/").status == 200
            assert server.fetch("/api/v1/services/").status == 200

            proxy.cut()
            answered = check_every_kind_of_request(server, API_WHILE_DB_DOWN, "/")

            proxy.restore()
            back = server.fetch("/", "en")
            assert back.status == 200, back.text[:2000]
            assert "Get help from a city doctor or a union lawyer" in back.text
            assert server.fetch("/api/v1/services/").status == 200
            assert_logged_once_each(server, answered)
    finally:
        proxy.close()


# --- Redis down ------------------------------------------------------------------------------------

API_WHILE_REDIS_DOWN: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/api/v1/figures/", None, {}),
    # The rate limit counts in the cache.
    ("POST", "/api/v1/track/", {"reference": "ABCD2345", "phone_last4": "1234"}, {}),
]


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_answer_503_while_redis_is_down_and_again_once_it_is_back(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        with serving(tmp_path, DATABASE_URL=database_url(), REDIS_URL=redis.url, CHANNELS_PREFIX="outage") as server:
            assert server.fetch("/figures/").status == 200
            assert server.fetch("/api/v1/figures/").status == 200

            redis.stop()
            answered = check_every_kind_of_request(server, API_WHILE_REDIS_DOWN, "/figures/")

            redis.start()
            back = server.fetch("/figures/", "en")
            assert back.status == 200, back.text[:2000]
            assert server.fetch("/api/v1/figures/").status == 200
            assert server.fetch("/api/v1/track/", "en", "POST", API_WHILE_REDIS_DOWN[1][2]).status == 404
            assert_logged_once_each(server, answered)
    finally:
        redis.stop()


# --- in the test process: production settings (DEBUG off) ------------------------------------------


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False


@pytest.fixture
def dead_cache(settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://{HOST}:{spare_port()}/0"}
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("production", "dead_cache")
def test_with_debug_off_a_cache_outage_is_a_503_page_not_a_500() -> None:
    for language in ("zh-hans", "en"):
        response = Client(HTTP_ACCEPT_LANGUAGE=language, raise_request_exception=False).get("/figures/")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert (PAGE_ZH if language == "zh-hans" else PAGE_EN) in response.content.decode()
        assert "no-store" in response.headers["Cache-Control"]


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> None:
    """The home page fails with an ordinary bug (not an outage)."""

    def fail() -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "catalogue", fail)


@pytest.mark.usefixtures("production", "boom")
def test_with_debug_off_a_500_is_a_translated_page_that_needs_neither_database_nor_cache(
    alice: User, django_assert_num_queries: Callable[..., Any], dead_cache: None,
) -> None:
    for language, text in (("zh-hans", ERROR_ZH), ("en", ERROR_EN)):
        client = Client(HTTP_ACCEPT_LANGUAGE=language, raise_request_exception=False)
        client.force_login(alice)  # a page that showed the account would read the session
        # The two are the session and the user, read before any view by the staff second-factor
        # check (staff/middleware.py); the 500 page itself reads nothing.
        with django_assert_num_queries(2):
            response = client.get("/")
        assert response.status_code == 500
        page = response.content.decode()
        assert text in page and f'lang="{language}"' in page
        assert "a bug" not in page


@pytest.mark.usefixtures("production", "boom")
def test_with_debug_off_an_api_500_keeps_the_api_error_shape(alice: User) -> None:
    from consult.api import views as api_views

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_views.ServiceListView, "get", fail)
        response = Client(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False).get("/api/v1/services/")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "server_error", "message": "Something went wrong on our side. Please try again later.",
                  "fields": {}}
    }


@pytest.mark.usefixtures("production")
def test_an_outage_after_the_view_in_the_session_save_is_a_503_too(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging in writes the session twice: when the key is cycled (in the view) and after the
    view (in the session middleware). The database goes away between the two."""
    save = SessionStore.save

    def save_until_the_outage(self: SessionStore, must_create: bool = False) -> None:
        if not must_create:
            raise OperationalError("server closed the connection unexpectedly")
        save(self, must_create)

    monkeypatch.setattr(SessionStore, "save", save_until_the_outage)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans", raise_request_exception=False)
    response = client.post("/accounts/login/", {"username": alice.phone, "password": PASSWORD})
    assert response.status_code == 503
    assert PAGE_ZH in response.content.decode()
    assert response.headers["Retry-After"]


@pytest.mark.django_db
def test_the_error_pages_render_without_a_request_database_or_cache(
    django_assert_num_queries: Callable[..., Any], dead_cache: None
) -> None:
    for template, text in (("503.html", PAGE_ZH), ("500.html", ERROR_ZH)):
        with translation.override("zh-hans"), django_assert_num_queries(0):
            assert text in render_to_string(template)

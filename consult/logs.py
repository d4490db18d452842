"""Request ids in every log line, and the log format.

Each request has an id: the `X-Request-ID` a trusted proxy sent (only with TRUSTED_PROXIES > 0,
and only a short one of letters, digits and dashes: anything else could forge or break log lines),
otherwise a new one. It is answered in the response's `X-Request-ID`, held in a context variable
while the request runs, so `RequestIdFilter` puts it on every log record of that request, and sent
with every job queued meanwhile as a message header, so the worker's log lines of that job carry it
too. A websocket connection has an id of its own for its lifetime (`connection_id`).

LOG_FORMAT=json writes one JSON object a line (time, level, logger, message, request_id and the
traceback if any), for a log collector; `text` one readable line. JSON is the default with DEBUG off.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

HEADER = "X-Request-ID"
# The Celery message header a queued job carries its request's id in.
TASK_HEADER = "request_id"
NONE = "-"
VALID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NONE)


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def trusted_id(value: str | None) -> str | None:
    """A proxy's id when proxies are trusted and it is well formed, else None."""
    if settings.TRUSTED_PROXIES > 0 and value and VALID.match(value):
        return value
    return None


def connection_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The id of a websocket connection: its proxy's request id (trusted as for requests) or a new
    one, prefixed `ws-` so a socket's log lines are told apart from page requests'."""
    sent = dict(headers).get(HEADER.lower().encode(), b"").decode("latin-1")
    return trusted_id(sent) or new_id("ws-")


class RequestIdMiddleware:
    """First in MIDDLEWARE, so every later middleware's log lines and every answer, redirects and
    errors too, carry the id."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        token = request_id.set(self.id_of(request))
        try:
            response: HttpResponseBase = self.get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = request.request_id  # type: ignore[attr-defined]
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = request_id.set(self.id_of(request))
        try:
            get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = request.request_id  # type: ignore[attr-defined]
        return response

    @staticmethod
    def id_of(request: HttpRequest) -> str:
        value = trusted_id(request.headers.get(HEADER)) or new_id()
        request.request_id = value  # type: ignore[attr-defined]
        return value


class RequestIdFilter(logging.Filter):
    """Puts the current request's (or job's, or socket's) id on each record: `%(request_id)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line. The standard library's json is enough for these few fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NONE),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for LOG_FORMAT `json` or `text`."""
    formatter: dict[str, Any] = (
        {"()": "consult.logs.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "consult.logs.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            # WeasyPrint narrates every rendering step at INFO; fontTools subsetting too.
            "weasyprint": {"level": "WARNING"},
            "fontTools": {"level": "WARNING"},
            # Axes logs every log-in at INFO; its warnings (each failure, each lockout) are kept.
            "axes": {"level": "WARNING"},
            # A failed readiness check is answered (503, naming it) and logged once by consult/health.py.
            "health_check": {"level": "ERROR"},
        },
    }


# --- jobs: the id travels in the message's headers ---------------------------------------------


def _before_publish(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    current = request_id.get()
    if headers is not None and current != NONE and TASK_HEADER not in headers:
        headers[TASK_HEADER] = current


_task_tokens: dict[str, contextvars.Token[str]] = {}


def _task_started(task_id: str = "", task: Any = None, **_kwargs: Any) -> None:
    # An eager job runs inside its request: it keeps the request's id as it is.
    if task is None or task.request.is_eager:
        return
    sent = getattr(task.request, TASK_HEADER, None)
    _task_tokens[task_id] = request_id.set(sent if isinstance(sent, str) and VALID.match(sent) else new_id("job-"))


def _task_ended(task_id: str = "", **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id.reset(token)


def connect_task_signals() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_before_publish, weak=False, dispatch_uid="consult.logs.publish")
    task_prerun.connect(_task_started, weak=False, dispatch_uid="consult.logs.prerun")
    task_postrun.connect(_task_ended, weak=False, dispatch_uid="consult.logs.postrun")

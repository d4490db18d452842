"""Answers while a backing service is down, and the 500 page.

A lost database or Redis connection is an outage, not a bug: the request is answered 503 with
Retry-After, in the request's language (the API in its one error shape), and logged in one line.
The pages rendered here never reach the database, the cache or the session: they get no request
context (no context processors) and link no static file (a missing manifest would break them).
"""

from __future__ import annotations

import logging
import sys

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

from consult.api.errors import error_body

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30

# OperationalError covers refused and dropped connections and statement timeouts; InterfaceError
# a connection already closed. The cache raises redis' own errors (LoadingError is one).
DATABASE_ERRORS = (OperationalError, InterfaceError)
CACHE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def outage_of(exc: BaseException | None) -> str | None:
    """"database" or "cache" when exc (or what it was raised from) is a lost backing service."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, DATABASE_ERRORS):
            return "database"
        if isinstance(exc, CACHE_ERRORS):
            return "cache"
        exc, seen = exc.__cause__, seen + 1
    return None


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _page_context(request: HttpRequest) -> dict[str, object]:
    # Only a GET can be retried by following a link; a form is sent again from the browser.
    return {"retry_path": request.get_full_path() if request.method == "GET" else ""}


def _logged(response: HttpResponse) -> HttpResponse:
    # Django would log the 5xx again (django.request, once more with a traceback when the
    # exception escaped a middleware); the line logged here says all there is.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def unavailable_response(request: HttpRequest, exc: BaseException, service: str) -> HttpResponse:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    logger.warning(
        "%s %s answered 503: the %s is unavailable (%s: %s)",
        request.method, request.path, service, type(exc).__name__, message,
    )
    with translation.override(translation.get_language_from_request(request)):
        response: HttpResponse
        if _is_api(request):
            response = JsonResponse(
                error_body(
                    "service_unavailable",
                    _("The service is temporarily unavailable. Please try again in a minute."),
                ),
                status=503,
                json_dumps_params={"ensure_ascii": False},
            )
        else:
            response = HttpResponse(render_to_string("503.html", _page_context(request)), status=503)
        response["Content-Language"] = translation.get_language()
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    add_never_cache_headers(response)
    return _logged(response)


class OutageMiddleware(MiddlewareMixin):
    """Outages raised by a view or while its response renders become a 503."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = outage_of(exception)
        if service is None:
            return None
        return unavailable_response(request, exception, service)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 (DEBUG off). Also the last resort for an outage raised outside a view, e.g. in
    the session middleware's save after the view: Django calls this inside its except block."""
    exc = sys.exc_info()[1]
    service = outage_of(exc)
    if exc is not None and service is not None:
        return unavailable_response(request, exc, service)
    with translation.override(translation.get_language_from_request(request)):
        response: HttpResponse
        if _is_api(request):
            response = JsonResponse(
                error_body("server_error", _("Something went wrong on our side. Please try again later.")),
                status=500,
                json_dumps_params={"ensure_ascii": False},
            )
        else:
            response = HttpResponse(render_to_string("500.html", _page_context(request)), status=500)
        response["Content-Language"] = translation.get_language()
    add_never_cache_headers(response)
    return response

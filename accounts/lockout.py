"""Password log-in lockout (django-axes): what axes is told and what a locked-out person sees.

Every password log-in goes through Django's authenticate(), which axes' backend guards: the web
login page, the admin's and the API's auth/token/. A (phone, client address) pair that fails
LOGIN_FAILURE_LIMIT times is refused, right password or not, until LOGIN_LOCKOUT_MINUTES pass
without a try (each try while locked starts the wait again) or a coordinator unlocks the number
(coordinator page /coordinator/lockouts/, or the admin's access attempts). The pair, not the phone
alone: a stranger cannot lock a resident out from another network. A resident who is locked out can
still log in with a code sent to her phone (the codes have their own limits, accounts/services.py).
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from consult.models import normalize_phone

API_PREFIX = "/api/"


def username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The phone the try was for, normalised (so "+86 138-..." and "138..." count as one): the
    web and admin forms post it as `username`, the API passes it as `phone`."""
    credentials = credentials or {}
    raw = credentials.get("phone") or credentials.get("username")
    if raw is None:
        raw = request.POST.get("username") or request.POST.get("phone") or ""
    return normalize_phone(str(raw))


def client_ip(request: HttpRequest) -> str:
    from consult.net import client_address

    return client_address(request)


def locked_message() -> str:
    return _(
        "Too many wrong passwords for this number. Logging in with a password is blocked for "
        "%(minutes)d minutes. You can log in with a code sent to your phone instead, or ask a "
        "coordinator to unlock the number."
    ) % {"minutes": settings.LOGIN_LOCKOUT_MINUTES}


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """The API's error shape under /api/, else a page of the site; 429 with Retry-After either way.
    (Axes passes the original response and the credentials, in an order that differs between its
    sync and async middleware: neither is needed here.)"""
    seconds = settings.LOGIN_LOCKOUT_MINUTES * 60
    response: HttpResponse
    if request.path.startswith(API_PREFIX):
        body = {"error": {"code": "locked_out", "message": locked_message(), "fields": {}}}
        response = JsonResponse(body, status=429)
    else:
        response = render(request, "accounts/locked.html", {"message": locked_message()}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def locked_numbers() -> list[dict[str, Any]]:
    """The numbers locked now, with their failures and last try: what a coordinator may unlock."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (
        AccessAttempt.objects.filter(attempt_time__gte=since)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .order_by("username", "ip_address")
    )
    return list(rows)


def unlock(*, phone: str) -> int:
    """Forget every failed try for `phone` (from every address): it may log in again at once."""
    from axes.utils import reset

    return reset(username=normalize_phone(phone))

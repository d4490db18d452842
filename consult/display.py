"""Elderly mode: larger type and stronger contrast, switched from the header of every page.

Remembered on the account for someone signed in (so it follows them to another phone) and in a
cookie for everyone (so a visitor keeps it, and the choice survives logging out). A plain POST
form does the switch: it works without JavaScript, and nothing inline is needed under the CSP.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from consult.models import User

COOKIE = "large_text"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60


def large_text_wanted(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return bool(user.large_text)
    return request.COOKIES.get(COOKIE) == "1"


def display(request: HttpRequest) -> dict[str, Any]:
    """Context processor: `large_text` for the class on <html> and the header's switch."""
    return {"large_text": large_text_wanted(request)}


def _next_url(request: HttpRequest) -> str:
    for candidate in (request.POST.get("next"), request.headers.get("referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return "/"


@require_POST
def set_display(request: HttpRequest) -> HttpResponse:
    on = request.POST.get("large_text") == "1"
    if request.user.is_authenticated:
        User.objects.filter(pk=request.user.pk).update(large_text=on)
    response = HttpResponseRedirect(_next_url(request))
    response.set_cookie(
        COOKIE, "1" if on else "0", max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response

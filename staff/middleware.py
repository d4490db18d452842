"""Staff prove a second factor before anything else: a doctor's, lawyer's, coordinator's or
admin's session that has not (django-otp's OTPMiddleware says, just before this one) reaches only
the second-factor pages, the log-out and the language switch. The admin site checks the same
(consult/urls.py), so the rule holds even if this middleware were left out."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from consult.api.errors import error_body
from consult.models import User
from staff import services

OPEN_NAMES = ("staff:verify", "staff:enrol", "logout", "set_language")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        # The role is on the user already loaded: residents and visitors cost nothing here.
        if not services.needs_second_factor(user) or getattr(user, "is_verified", lambda: False)():
            return self.get_response(request)
        assert isinstance(user, User)
        if request.path in {reverse(name) for name in OPEN_NAMES} or request.path.startswith("/static/"):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            # A session not yet through its second factor is no session for the API either (tokens
            # are only given with the code: see the API's log-in).
            message = _("Enter the code from your authenticator app first.")
            return JsonResponse(error_body("second_factor_required", message), status=403)
        target = "staff:verify" if services.has_second_factor(user) else "staff:enrol"
        nxt = request.get_full_path() if request.method == "GET" else reverse("home")
        return HttpResponseRedirect(f"{reverse(target)}?{urlencode({'next': nxt})}")

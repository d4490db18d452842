"""The API's throttles: consult/limits.py's atomic counters, keyed on what identifies the actor.

DRF's own throttles keep a list of times read and written back (two requests at once count as
one) and, before TRUSTED_PROXIES, keyed anonymous clients on the whole X-Forwarded-For a client
writes; these count with cache.add + incr and key on consult/net.py's address. A refusal is DRF's
Throttled, which consult/api/errors.py answers with the error shape, 429 and Retry-After.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from consult import limits
from consult.net import client_address


def actor_of(request: Request) -> str:
    """A signed-in user by id (wherever they connect from), anyone else by address."""
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"address:{client_address(request._request)}"


class CountedThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def actor(self, request: Request, view: APIView) -> str:
        return actor_of(request)

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            limits.take(self.scope, self.actor(request, view))
        except limits.RateLimited as limited:
            self.retry_after = limited.retry_after
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after


class AddressThrottle(CountedThrottle):
    """By address even when signed in: log-in, sign-up and tracking come before any account."""

    def actor(self, request: Request, view: APIView) -> str:
        return f"address:{client_address(request._request)}"


class LoginThrottle(AddressThrottle):
    scope = "login"


class SignupThrottle(AddressThrottle):
    scope = "signup"


class TrackingThrottle(AddressThrottle):
    scope = "tracking"


class UploadThrottle(CountedThrottle):
    """The same count as the pages' uploads (consult/views.py): one per file, per user."""

    scope = "uploads"


class MessageThrottle(CountedThrottle):
    scope = "messages"


class Limited(Throttled):
    """A limit counted in a view or a service (limits.RateLimited), answered as any throttle, with
    its own message when it has one."""

    def __init__(self, limited: limits.RateLimited) -> None:
        super().__init__(wait=limited.retry_after)
        self.message = limited.message if limited.has_message else ""


def post_only(throttle: type[CountedThrottle], request: Any) -> list[BaseThrottle]:
    return [throttle()] if request.method == "POST" else []

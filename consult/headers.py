"""Response headers that keep a page to itself: its Content-Security-Policy (with the websocket
origin of the host it was asked on), its Permissions-Policy, and no caching of anything a signed-in
person or a credentialed API call is shown.

The policy itself is CONTENT_SECURITY_POLICY in settings (django-csp): scripts, styles, images and
fonts from this site only, nothing inline.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with `connect-src` also naming ws:// or wss:// of the host the page
    was served from: the chat and the live queues open their sockets there, and 'self' alone does
    not cover the websocket schemes in every browser."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        scheme = "wss" if request.is_secure() else "ws"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), f"{scheme}://{host}"]
        parts.update = update
        return parts


# Powerful features no page uses: denied to the page and to anything it could embed.
DENIED_FEATURES = (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope", "hid",
    "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get", "screen-wake-lock",
    "serial", "usb", "xr-spatial-tracking",
)
# A case's own page, where voice messages and calls will be recorded (issue 17): camera and
# microphone for this site only (the browser still asks the person).
MEDIA_PAGE = re.compile(r"^/cases/[^/]+/$")


def permissions_policy(path: str) -> str:
    features = dict.fromkeys(DENIED_FEATURES, "()")
    if MEDIA_PAGE.match(path):
        features["camera"] = features["microphone"] = "(self)"
    return ", ".join(f"{feature}={allow}" for feature, allow in features.items())


class PrivateResponseMiddleware:
    """Permissions-Policy on every response, and `Cache-Control: no-store, private` on every page
    and API answer: any of them may show a case, a name or a CSRF token (the tracking and
    verification pages show a case without an account), and none is worth keeping in a shared or
    a browser cache. A view's own Cache-Control stands only for a request without a session cookie
    or a token (static files never come here: WhiteNoise answers them first)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", permissions_policy(request.path_info))
        if not response.has_header("Cache-Control") or self._private(request):
            patch_cache_control(response, no_store=True, private=True)
        return response

    @staticmethod
    def _private(request: HttpRequest) -> bool:
        # Credentials presented, valid or not: read without the session store or the database,
        # which the 500 and 503 pages must never need.
        return settings.SESSION_COOKIE_NAME in request.COOKIES or "HTTP_AUTHORIZATION" in request.META

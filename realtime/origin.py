"""The Origin check of sockets that a browser opens with its session cookie: the page must come
from this very site, scheme, host and port alike (channels' AllowedHostsOriginValidator compares
the host only, so a page on http://127.0.0.1:8080 or on plain http could drive a session's socket
on https://127.0.0.1). Origins listed in CSRF_TRUSTED_ORIGINS are accepted too, as Django's own
CSRF check does for forms (a site whose TLS ends at a proxy that does not say so).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin written as scheme and host[:port]; None if malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The origin a page of this site has, for the socket's request: the scheme it came over (wss:
    the page was https) and its Host header."""
    host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
    return _origin("https" if scope.get("scheme") in ("wss", "https") else "http", host)


def origin_of(value: str) -> tuple[str, str, int] | None:
    parts = urlsplit(value)
    return _origin(parts.scheme, parts.netloc) if not parts.path.strip("/") else None


def same_origin(scope: dict[str, Any]) -> bool:
    value = dict(scope.get("headers", [])).get(b"origin", b"").decode("latin-1")
    origin = origin_of(value) if value else None
    if origin is None:
        return False
    return origin == own_origin(scope) or origin in {origin_of(o) for o in settings.CSRF_TRUSTED_ORIGINS}


class SameOriginValidator:
    """Refuses the handshake (HTTP 403) of a socket whose Origin is not this site's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)  # the handshake is refused
        return await self.inner(scope, receive, send)

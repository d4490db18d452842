"""Sockets for app clients: `Authorization: Token <token>` (the API's token) instead of a session.

A browser page cannot set that header on a websocket, so a socket carrying it cannot be a
cross-site hijack of someone's session: for those sockets the Origin check is not needed (apps
often send no Origin at all). Every other socket keeps the allowed-hosts Origin check.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.auth import AuthMiddleware, CookieMiddleware, SessionMiddleware, get_user
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from consult.outage import outage_of
from realtime.db import db

logger = logging.getLogger(__name__)
TRY_AGAIN_LATER = 1013


def _token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() == "token":
                return parts[1]
    return None


@db
def _user_for(token: str) -> Any:
    from knox.auth import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        user, _auth = TokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return AnonymousUser()
    return user


class SessionAuthMiddleware(AuthMiddleware):
    """channels' AuthMiddleware, reading the session and its user on the sockets' database threads
    (channels reads them on the one sync thread every socket of the process shares)."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await db(get_user.func)(scope)


def SessionAuthStack(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))


class TokenAuthMiddleware:
    """Put the token's user in the scope when the socket carries a token."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = _token(scope)
        if token is not None:
            scope = {**scope, "user": await _user_for(token)}
        return await self.inner(scope, receive, send)


class OutageGuard:
    """A socket opened while the database or Redis is down is refused with 1013 ("try again
    later"), logged in one line, instead of a traceback and a broken handshake. Clients reconnect
    with backoff."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        try:
            return await self.inner(scope, receive, send)
        except Exception as error:
            service = outage_of(error)
            if service is None:
                raise
            logger.warning("websocket %s refused: the %s is unavailable (%r)", scope.get("path"), service, error)
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})


class TokenOrOriginValidator:
    """Sockets with a token: the token's user, no Origin check, no session read. Others: the
    allowed-hosts Origin check and the session's user."""

    def __init__(self, inner: Any) -> None:
        self.with_token = TokenAuthMiddleware(inner)
        self.with_session = AllowedHostsOriginValidator(SessionAuthStack(inner))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if _token(scope) is not None:
            return await self.with_token(scope, receive, send)
        return await self.with_session(scope, receive, send)

"""Who is on a socket: the API token's user (`Authorization: Token <token>`) or the session's.

A browser page cannot set that header on a websocket, so a socket carrying it cannot be a
cross-site hijack of someone's session: for those sockets the Origin check is not needed (apps
often send no Origin at all). Every other socket keeps the allowed-hosts Origin check.

Each socket's scope names the credential it was opened with (`credential`, accounts/access.py), so
a logout closes that credential's sockets and a new password all the others.

The user is read lazily, on the consumer's first trip to the database (`user_of`): one trip to a
database thread per connect instead of one for the user and another for the access check, which
is what a reconnect storm (every socket of a process at once) waits on.
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts import access
from consult.outage import outage_of
from realtime.origin import SameOriginValidator

logger = logging.getLogger(__name__)
TRY_AGAIN_LATER = 1013


def _token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() == "token":
                return parts[1]
    return None


class SocketTokenAuthentication(TokenAuthentication):
    def _cleanup_token(self, auth_token: Any) -> bool:
        # knox also deletes the user's other expired tokens here, a query on every use: the
        # API's requests do that housekeeping; a socket only refuses its own token once expired.
        return auth_token.expiry is not None and auth_token.expiry < timezone.now()


def _token_user(token: str) -> Any:
    try:
        user, _auth = SocketTokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return AnonymousUser()
    return user


def user_of(scope: dict[str, Any]) -> Any:
    """The socket's user (an AnonymousUser when none). Reads the database the first time: call it
    on a database thread (realtime/db.py)."""
    user = scope.get("user") or AnonymousUser()
    _ = user.is_authenticated  # the first use reads the user: here, on this thread
    return user


def logout_reaches(event: dict[str, Any], scope: dict[str, Any]) -> bool:
    """Whether a "user.logout" event closes the socket of `scope`: the event names the credential
    whose sockets close (`only`), or the one whose sockets stay (`keep`), or neither (all close)."""
    credential = scope.get("credential")
    if "only" in event:
        return credential == event["only"]
    return "keep" not in event or credential != event["keep"]


class TokenAuthMiddleware:
    """The token's user, when the socket carries a token."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = _token(scope)
        if token is not None:
            user = SimpleLazyObject(partial(_token_user, token))
            scope = {**scope, "user": user, "credential": access.raw_token_credential(token)}
        return await self.inner(scope, receive, send)


class SessionUserMiddleware:
    """The session cookie's user. Sockets never change the session, so it is only read, and only
    when the consumer first asks (channels' own middleware loads it on the one sync thread every
    socket of the process shares, then the user on another trip)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        session = import_module(settings.SESSION_ENGINE).SessionStore(key)
        scope = {**scope, "session": session, "credential": access.session_credential(key)}
        scope["user"] = SimpleLazyObject(partial(get_user.func, scope))
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
    """Sockets with a token: the token's user, no Origin check, no session. Others: the
    allowed-hosts Origin check and the session's user."""

    def __init__(self, inner: Any) -> None:
        self.with_token = TokenAuthMiddleware(inner)
        self.with_session = SameOriginValidator(
            AllowedHostsOriginValidator(CookieMiddleware(SessionUserMiddleware(inner)))
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if _token(scope) is not None:
            return await self.with_token(scope, receive, send)
        return await self.with_session(scope, receive, send)

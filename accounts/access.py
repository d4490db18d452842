"""Ending access: the sessions, API tokens and sockets of an account, and what ends which.

A *credential* is what a request or a socket was signed in with: a session (by its key) or an API
token (by its digest, as knox stores it). Sockets remember theirs (realtime/auth.py), so one
credential's sockets can be closed alone. Credentials are named by a hash prefix, never by the key
or the token itself, because the names travel through the channel layer.

What ends what:
- a logout (web or API) ends the session or token it is made with, and that credential's sockets
  (accounts/signals.py: Django's logged-out signal, and a deleted token, however it was deleted);
- "log out everywhere" (`access_end`) ends every session, token and socket of the account;
- a new password (changed, reset by code, set in the admin) and a new phone number end every other
  session, token and socket: the credential the change was made with stays (`keeping`);
- a new role (or staff or superuser flag) and deactivation end everything, whoever made them.
The last two are noticed when the user row is saved (accounts/signals.py), so the admin, a shell or
a management command cannot change them and leave access behind.

Sessions end through the session's auth hash, as Django ends them on a new password: the hash
includes `User.session_epoch`, which `access_end` raises. A kept session is given the new hash by
its view (`update_session_auth_hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from knox.crypto import hash_token
from knox.models import AuthToken

from consult.models import User
from realtime.events import UserLogoutEvent, send_event_on_commit, user_group

SESSION_PREFIX = "session."
TOKEN_PREFIX = "token."  # noqa: S105 - a name's prefix, not a secret
# 128 bits of each hash: unique among any account's credentials, and short in every event.
NAME_CHARS = 32

# The credential a change being saved was made with (see `keeping`).
_kept: ContextVar[str | None] = ContextVar("accounts_access_kept", default=None)


def session_credential(session_key: str | None) -> str | None:
    if not session_key:
        return None
    return SESSION_PREFIX + hashlib.sha256(session_key.encode()).hexdigest()[:NAME_CHARS]


def token_credential(digest: str) -> str:
    return TOKEN_PREFIX + digest[:NAME_CHARS]


def raw_token_credential(token: str) -> str:
    """The credential of a token as a client sends it (knox's digest, without the database)."""
    return token_credential(hash_token(token))


def request_credential(request: Any) -> str | None:
    """What a signed-in request (a page's, or the API's: DRF's Request) was signed in with."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, AuthToken):
        return token_credential(auth.digest)
    django_request: HttpRequest = getattr(request, "_request", request)
    user = getattr(django_request, "user", None)
    session = getattr(django_request, "session", None)
    if user is None or not user.is_authenticated or session is None:
        return None
    return session_credential(session.session_key)


@contextmanager
def keeping(request: Any) -> Iterator[None]:
    """A change saved inside (a new password or number) ends the account's other credentials but
    not the one `request` was signed in with. A view that keeps a session then gives it the new
    auth hash (Django's password change view already does)."""
    reset = _kept.set(request_credential(request))
    try:
        yield
    finally:
        _kept.reset(reset)


def kept_credential() -> str | None:
    return _kept.get()


def sockets_close(*, user_id: int, only: str | None = None, keep: str | None = None) -> None:
    """After commit, close the user's sockets (4401 "logged out"): those of the credential `only`,
    or all but those of `keep`, or all."""
    event: UserLogoutEvent = {"type": "user.logout"}
    if only is not None:
        event["only"] = only
    elif keep is not None:
        event["keep"] = keep
    send_event_on_commit(user_group(user_id), event)


@transaction.atomic
def access_end(*, user: User, keep: str | None = None) -> None:
    """End every session, API token and socket of `user`, but the credential `keep` (a session's
    or a token's, as `request_credential` names it; a kept session needs its new auth hash from
    the view). `user.session_epoch` is updated in place."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
    tokens = AuthToken.objects.filter(user=user)
    if keep is not None and keep.startswith(TOKEN_PREFIX):
        tokens = tokens.exclude(digest__startswith=keep.removeprefix(TOKEN_PREFIX))
    tokens.delete()  # each one's sockets are closed by its post_delete (accounts/signals.py) as well
    sockets_close(user_id=user.pk, keep=keep)

"""`Idempotency-Key` on creating calls: a retry returns the first result, never a second case."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from consult.api.errors import error_response
from consult.models import IdempotencyKey

KEY_MAX_LENGTH = 100


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a POST handler: with an Idempotency-Key header, the first response is stored and
    replayed for every retry by the same user with the same key (to the same endpoint)."""

    @wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return view(self, request, *args, **kwargs)
        if len(key) > KEY_MAX_LENGTH:
            return error_response("invalid", _("The Idempotency-Key header is too long."), 400)
        endpoint = request.path
        try:
            with transaction.atomic():
                # The key is taken before the call runs, in the call's transaction: a concurrent
                # retry waits on it (the unique constraint, or SQLite's write lock) and then
                # replays this answer; it never runs the call a second time.
                stored, taken = IdempotencyKey.objects.get_or_create(
                    user=request.user, key=key, defaults={"endpoint": endpoint, "status": 0}
                )
                if not taken:
                    return _replay(stored, endpoint)
                response = view(self, request, *args, **kwargs)
                if response.status_code >= 500 or response.status_code == 429:
                    raise _NotAResult(response)  # the retry should run again: give the key back
                stored.status, stored.body = response.status_code, _as_sent(response)
                stored.save(update_fields=["status", "body"])
                return response
        except _NotAResult as not_a_result:
            return not_a_result.response

    return wrapper


class _NotAResult(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _as_sent(response: Response) -> Any:
    """The body as the client received it: a replay must be exactly the first answer, and the
    field's DjangoJSONEncoder writes decimals and times differently from the API's renderer."""
    return json.loads(JSONRenderer().render(response.data))


def _replay(stored: IdempotencyKey, endpoint: str) -> Response:
    if stored.endpoint != endpoint:
        return error_response("idempotency_key_reused", _("This Idempotency-Key was used for another request."), 422)
    response = Response(stored.body, status=stored.status)
    response["Idempotent-Replay"] = "true"
    return response

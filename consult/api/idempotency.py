"""`Idempotency-Key` on creating calls: a retry returns the first result, never a second case."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.utils.translation import gettext as _
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from consult.api.errors import error_response
from consult.models import User
from consult.services import idempotency
from consult.services.idempotency import KEY_MAX_LENGTH


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a POST handler: with an Idempotency-Key header, the first response is stored and
    replayed for every retry by the same user with the same key (to the same endpoint)."""

    @wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or not isinstance(request.user, User):
            return view(self, request, *args, **kwargs)
        if len(key) > KEY_MAX_LENGTH:
            return error_response("invalid", _("The Idempotency-Key header is too long."), 400)
        try:
            claim = idempotency.idempotency_claim(user=request.user, key=key, endpoint=request.path)
        except idempotency.KeyReused:
            return error_response(
                "idempotency_key_reused", _("This Idempotency-Key was used for another request."), 422
            )
        except idempotency.StillRunning:
            busy = error_response(
                "idempotency_key_in_use",
                _("The first request with this Idempotency-Key is still running. Please try again in a moment."),
                409,
            )
            busy["Retry-After"] = "2"
            return busy
        if claim.finished:
            replay = Response(claim.body, status=claim.status)
            replay["Idempotent-Replay"] = "true"
            return replay
        # The call runs outside any transaction of ours: it may wait on the file store.
        try:
            response = view(self, request, *args, **kwargs)
        except BaseException:
            idempotency.idempotency_release(claim=claim)  # the retry should run again
            raise
        if response.status_code >= 500 or response.status_code == 429:
            idempotency.idempotency_release(claim=claim)
        else:
            idempotency.idempotency_finish(claim=claim, status=response.status_code, body=_as_sent(response))
        return response

    return wrapper


def _as_sent(response: Response) -> Any:
    """The body as the client received it: a replay must be exactly the first answer, and the
    field's DjangoJSONEncoder writes decimals and times differently from the API's renderer."""
    if response.data is None:
        return None
    return json.loads(JSONRenderer().render(response.data))

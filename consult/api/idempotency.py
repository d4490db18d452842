"""`Idempotency-Key` on creating calls: a retry returns the first result, never a second case."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
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
        stored = IdempotencyKey.objects.filter(user=request.user, key=key).first()
        if stored is not None:
            return _replay(stored, endpoint)
        response = view(self, request, *args, **kwargs)
        if response.status_code >= 500 or response.status_code == 429:
            return response  # not a result: the retry should run again
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(
                    user=request.user, key=key, endpoint=endpoint, status=response.status_code, body=response.data
                )
        except IntegrityError:
            # A concurrent retry stored its answer first: everyone gets that one.
            stored = IdempotencyKey.objects.get(user=request.user, key=key)
            return _replay(stored, endpoint)
        return response

    return wrapper


def _replay(stored: IdempotencyKey, endpoint: str) -> Response:
    if stored.endpoint != endpoint:
        return error_response("idempotency_key_reused", _("This Idempotency-Key was used for another request."), 422)
    response = Response(stored.body, status=stored.status)
    response["Idempotent-Replay"] = "true"
    return response

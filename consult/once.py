"""Pages' creating forms submit once: each carries a key (`{% submit_once %}` in the form, a hidden
field), and a second request with the same key and the same content (a double click, a form sent
again after a lost answer) gets the first one's result (the same redirect, with its messages)
instead of doing it again. The same keys and rules as the API's Idempotency-Key
(consult/services/idempotency.py).

The content counts too: a page kept by the browser (the back button) still holds the key of the
form it sent, and what is changed in it and sent again is a new submission, not a resend whose
changes would be silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext as _

from consult.models import User
from consult.services import idempotency

FIELD = "idempotency_key"
# What new_key makes (the stored key adds the content's digest, within its 100 characters);
# anything else in the field is ignored and the form simply runs.
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

View = Callable[..., HttpResponseBase]


def new_key() -> str:
    return secrets.token_urlsafe(24)


def key_for_form(request: HttpRequest) -> str:
    """The key a rendered form carries: the one it was sent with when it comes back with errors
    (a resubmission is still the same submission), else a new one."""
    posted = request.POST.get(FIELD, "") if request.method == "POST" else ""
    return posted if _KEY.match(posted) else new_key()


def submit_once(view: View) -> View:
    """Run a form's POST once per key and user; put it inside login_required."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        key = request.POST.get(FIELD, "") if request.method == "POST" else ""
        user = request.user
        if not _KEY.match(key) or not isinstance(user, User):
            return view(request, *args, **kwargs)
        try:
            claim = idempotency.idempotency_claim(user=user, key=f"{key}.{_content(request)}", endpoint=request.path)
        except idempotency.KeyReused:
            return _not_run(
                request, _("This form was already used for something else. Please open the page again."), 422
            )
        except idempotency.StillRunning:
            return _not_run(
                request,
                _("This form was already sent and is still being handled. Please wait a moment and look again."),
                409,
            )
        if claim.finished:
            return _replay(request, claim.status, claim.body)
        queued = _queued_messages(request)
        already = len(queued)
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            idempotency.idempotency_release(claim=claim)
            raise
        result = _result(response, queued[already:])
        if result is None:
            # The form came back with its errors, or the request failed: the next try runs.
            idempotency.idempotency_release(claim=claim)
        else:
            idempotency.idempotency_finish(claim=claim, status=response.status_code, body=result)
        return response

    return wrapper


def _content(request: HttpRequest) -> str:
    """A digest of what the form sends (its fields, its files' names and sizes)."""
    digest = hashlib.sha256()
    for name in sorted(request.POST):
        if name not in (FIELD, "csrfmiddlewaretoken"):  # the CSRF token is masked anew on each page
            for value in request.POST.getlist(name):
                digest.update(f"{name}\0{value}\0".encode())
    for name in sorted(request.FILES):
        for upload in request.FILES.getlist(name):
            digest.update(f"{name}\0{upload.name}\0{upload.size}\0".encode())
    return digest.hexdigest()[:32]


def _queued_messages(request: HttpRequest) -> list[Any]:
    # The messages this request adds are replayed with its result: the browser that sent the
    # form twice shows the second answer, and the first one's messages never reach it.
    # The storage's own list (not a copy): what the view adds shows up in it.
    queued = getattr(messages.get_messages(request), "_queued_messages", None)
    return queued if isinstance(queued, list) else []


def _result(response: HttpResponseBase, added: list[Any]) -> dict[str, Any] | None:
    """What a retry should get, or None when the response is not a result (errors, failures)."""
    notes = [[m.level, str(m.message), m.extra_tags or ""] for m in added]
    if response.status_code in (301, 302, 303) and response.has_header("Location"):
        return {"redirect": response["Location"], "messages": notes}
    if isinstance(response, JsonResponse) and response.status_code < 400:
        return {"json": json.loads(response.content), "messages": notes}
    return None


def _replay(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponseBase:
    for level, text, tags in body.get("messages", []):
        messages.add_message(request, level, text, extra_tags=tags)
    response: HttpResponseBase
    if "redirect" in body:
        response = HttpResponseRedirect(body["redirect"])
    else:
        response = JsonResponse(body.get("json"), status=status, safe=False)
    response["Idempotent-Replay"] = "true"
    return response


def _not_run(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"error": message}, status=status)
    return render(request, "consult/not_sent_again.html", {"message": message}, status=status)

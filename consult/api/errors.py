"""One error shape for every API failure: {"error": {"code", "message", "fields"}}, in the
language of the request."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from consult.errors import CaseError, NotAllowed, WrongState
from consult.files import SCANNER_DOWN, ScannerUnavailable, StorageUnavailable, UploadRefused
from consult.limits import wait_message

# An upload refused for what its bytes turned out to be (RFC 9110: 415 also when found "by inspecting
# the data directly"), or because the case holds all it may (the same file fits another case): not
# a malformed request. Every other refusal of a file is a 400.
UPLOAD_STATUS = {
    "type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "audio_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "audio_video": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "case_full": status.HTTP_409_CONFLICT,
    "too_many_files": status.HTTP_409_CONFLICT,
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def error_response(code: str, message: str, http_status: int, fields: dict[str, list[str]] | None = None) -> Response:
    return Response(error_body(code, message, fields), status=http_status)


def _fields(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
    return {}


def handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, NotAllowed):
        return error_response(exc.code or "permission_denied", " ".join(exc.messages), status.HTTP_403_FORBIDDEN)
    if isinstance(exc, WrongState):
        return error_response(exc.code or "wrong_state", " ".join(exc.messages), status.HTTP_409_CONFLICT)
    if isinstance(exc, UploadRefused):
        return error_response(exc.code or "refused", " ".join(exc.messages), UPLOAD_STATUS.get(exc.code or "", 400))
    if isinstance(exc, CaseError):
        return error_response(exc.code or "refused", " ".join(exc.messages), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        return error_response("invalid", _("Please check the highlighted fields."), 400, _fields(fields))
    if isinstance(exc, ScannerUnavailable):
        return error_response("scanner_unavailable", str(SCANNER_DOWN), status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, StorageUnavailable):
        return error_response(
            "storage_unavailable",
            _("The file store cannot be reached right now. Nothing was saved. Please try again in a few minutes."),
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return error_response("not_found", _("Not found."), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return error_response(
            "invalid", _("Please check the highlighted fields."), response.status_code, _fields(exc.detail)
        )
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        message = getattr(exc, "message", "") or (
            _("Too many requests. Please wait %(s)d seconds.") % {"s": wait} if wait < 120 else wait_message(wait)
        )
        retried = error_response("throttled", message, status.HTTP_429_TOO_MANY_REQUESTS)
        if exc.wait:
            retried["Retry-After"] = str(int(exc.wait))
        return retried
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return error_response(str(code), str(exc.detail), response.status_code)
    return response

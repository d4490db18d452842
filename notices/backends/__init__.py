"""SMS backends, chosen by the SMS_BACKEND setting as Django's e-mail backends by EMAIL_BACKEND."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from notices.backends.base import BaseSmsBackend, SmsError, SmsMessage, SmsRejected

__all__ = ["BaseSmsBackend", "SmsError", "SmsMessage", "SmsRejected", "get_backend"]


def get_backend(path: str | None = None) -> BaseSmsBackend:
    backend: type[BaseSmsBackend] = import_string(path or settings.SMS_BACKEND)
    return backend()

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SmsError(Exception):
    """The provider did not take the message this time (network, throttling, its own fault):
    worth another try later."""


class SmsRejected(SmsError):
    """The provider refused the message for good (a malformed number, a template it does not
    know): another try would be refused too."""


@dataclass
class SmsMessage:
    phone: str
    kind: str
    # Named as the kind's template names them, in its order (notices/kinds.py).
    params: dict[str, str]
    language: str
    # The text the provider's template produces, for the backends that print it.
    text: str
    # Ours: passed to providers that carry one back in their delivery reports.
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class BaseSmsBackend:
    """Sends one message; returns the provider's message id. Raises SmsError to be tried again
    later, SmsRejected when trying again cannot help."""

    # Whether the backend sends real messages through a provider (needs a signature and templates).
    provider = False
    # The settings a provider needs, all of them non-empty.
    required_settings: tuple[str, ...] = ()

    def send(self, message: SmsMessage) -> str:
        raise NotImplementedError

    @classmethod
    def configuration_errors(cls) -> list[str]:
        """What is missing for this backend to work, in words for an operator."""
        if not cls.provider:
            return []
        from notices.kinds import TEMPLATES

        errors = [f"{name} is not set" for name in (*cls.required_settings, "SMS_SIGN_NAME")
                  if not getattr(settings, name, "")]
        missing = [kind for kind in TEMPLATES if not settings.SMS_TEMPLATES.get(kind)]
        if missing:
            errors.append(
                "no template code for " + ", ".join(f"SMS_TEMPLATE_{kind.upper()}" for kind in missing)
            )
        return errors

    @staticmethod
    def template_code(kind: str) -> str:
        code = settings.SMS_TEMPLATES.get(kind)
        if not code:
            raise ImproperlyConfigured(f"SMS_TEMPLATE_{kind.upper()} is not set")
        return str(code)


def endpoint_and_scheme(endpoint: str) -> tuple[str, str]:
    """`host[:port]` and the scheme: https unless the setting names http:// (a local fake of the
    provider in tests; never a real one)."""
    if endpoint.startswith("http://"):
        return endpoint.removeprefix("http://").rstrip("/"), "http"
    return endpoint.removeprefix("https://").rstrip("/"), "https"

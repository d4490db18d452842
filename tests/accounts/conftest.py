"""What the accounts tests share: Chinese texts, the page clients, and a picture of everything a
refused request must leave as it was. The codes sent are the `sms` fixture (tests/sms.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from accounts.models import CodeQuota, PhoneCode
from consult.models import User


def zh(message: str, **params: Any) -> str:
    """A project string as the Chinese pages show it; it must be translated."""
    with translation.override("zh-hans"):
        text = translation.gettext(message)
    assert text != message, f"not translated: {message}"
    return text % params if params else text


def zh_plural(singular: str, plural: str, n: int, **params: Any) -> str:
    with translation.override("zh-hans"):
        text = translation.ngettext(singular, plural, n)
    assert text not in (singular, plural), f"not translated: {singular}"
    return text % params


def text_of(response: Any) -> str:
    body = response.content.decode()
    return html.unescape(re.sub(r"\s+", " ", body))


@pytest.fixture
def browser() -> Callable[..., Client]:
    def make(address: str = "10.0.0.1", language: str = "zh-hans") -> Client:
        return Client(HTTP_ACCEPT_LANGUAGE=language, REMOTE_ADDR=address)

    return make


def snapshot() -> dict[str, Any]:
    """Accounts, and codes with their tries and use: what a refused request must not change
    (the quota rows are compared by the tests that count)."""
    return {
        "users": sorted(User.objects.values_list("pk", "phone", "name", "password", "role", "is_active")),
        "codes": sorted(PhoneCode.objects.values_list("pk", "tries", "used_at")),
        "quotas": sorted(CodeQuota.objects.values_list("scope", "sent")),
    }

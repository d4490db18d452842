"""One client-address rule (consult/net.py): X-Forwarded-For entries are read only as far as
TRUSTED_PROXIES proxies wrote them, and X-Forwarded-Proto only when a proxy is declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory

from consult.net import client_address
from tests.consult.test_settings import _production, _run

SOCKET = "10.0.0.5"  # what daphne saw: the proxy itself, or a client reaching it directly


def address(forwarded: str | None = None, remote: str = SOCKET) -> str:
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(request)


def test_it_ignores_x_forwarded_for_when_no_proxy_is_trusted(settings: Any) -> None:
    settings.TRUSTED_PROXIES = 0

    assert address("198.51.100.1") == SOCKET
    assert address("198.51.100.1, 203.0.113.9") == SOCKET
    assert address() == SOCKET


def test_it_takes_the_entry_the_trusted_proxy_wrote_and_nothing_the_client_wrote(settings: Any) -> None:
    settings.TRUSTED_PROXIES = 1
    # The client wrote "1.1.1.1"; our proxy appended the address it was reached from.
    assert address("1.1.1.1, 203.0.113.9") == "203.0.113.9"
    assert address("8.8.8.8, 1.1.1.1, 203.0.113.9") == "203.0.113.9"

    settings.TRUSTED_PROXIES = 2  # a load balancer, then nginx
    assert address("1.1.1.1, 203.0.113.9, 10.0.0.2") == "203.0.113.9"


def test_it_falls_back_to_the_socket_address_when_the_entry_is_not_an_address(settings: Any) -> None:
    settings.TRUSTED_PROXIES = 1

    assert address("not-an-ip") == SOCKET
    assert address(None) == SOCKET
    assert address("2001:db8::7") == "2001:db8::7"


def _secure_and_ident(tmp_path: Path, **env: str) -> str:
    script = (
        "import django; django.setup();"
        "from django.conf import settings; from django.test import RequestFactory;"
        "from rest_framework.settings import api_settings;"
        "r = RequestFactory().get('/', HTTP_X_FORWARDED_PROTO='https', secure=False);"
        "print(settings.SECURE_PROXY_SSL_HEADER, r.is_secure(), api_settings.NUM_PROXIES)"
    )
    result = _run(["-c", script], _production(tmp_path, **env))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("proxies", "expected"),
    [("0", "None False 0"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https') True 1")],
)
def test_it_believes_x_forwarded_proto_only_behind_a_trusted_proxy(
    tmp_path: Path, proxies: str, expected: str
) -> None:
    assert _secure_and_ident(tmp_path, TRUSTED_PROXIES=proxies) == expected


def test_it_serves_with_daphne_proxy_headers_only_behind_a_trusted_proxy(settings: Any) -> None:
    from consult.management.commands.serve import daphne_command

    settings.TRUSTED_PROXIES = 0
    assert "--proxy-headers" not in daphne_command("127.0.0.1", 8000)
    settings.TRUSTED_PROXIES = 1
    assert "--proxy-headers" in daphne_command("127.0.0.1", 8000)

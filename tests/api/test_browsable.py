"""DRF's browsable API breaks the site's strict Content-Security-Policy (inline style attributes):
with DEBUG off a browser opening an API address reads JSON, never that page (issue 14). With DEBUG
on (`make run`) developers keep it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from consult.models import Case, User

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/api/v1/cases/", "/api/v1/services/", "/api/v1/figures/", "/api/v1/no-such/"])
def test_it_answers_a_browser_with_json_when_debug_is_off(
    path: str, alice: User, case: Case, settings: Any
) -> None:
    settings.DEBUG = False
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(alice)

    response = client.get(path, HTTP_ACCEPT=BROWSER)

    assert response["Content-Type"].startswith("application/json")
    json.loads(response.content)
    assert b"<html" not in response.content.lower()
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_it_keeps_the_browsable_pages_for_developers_with_debug_on(alice: User, case: Case, settings: Any) -> None:
    settings.DEBUG = True
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(alice)

    response = client.get("/api/v1/cases/", HTTP_ACCEPT=BROWSER)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_it_still_answers_json_to_an_app_asking_for_it(alice: User, case: Case, settings: Any) -> None:
    settings.DEBUG = False
    client = Client()
    client.force_login(alice)

    response = client.get("/api/v1/cases/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200 and response.json()

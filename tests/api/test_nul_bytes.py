"""A NUL character in what a client sends is refused in the API's error shape, never a 500: on
PostgreSQL a NUL reaching a query is a DataError (found by schemathesis in the services pass: the
medical intake looked the service up by the code sent before any form checked it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from consult.models import Case, Skill, User
from tests.api.conftest import API, MEDICAL_BODY, assert_error_shape


def test_it_refuses_a_service_code_with_a_nul_character(
    api: Callable[..., APIClient], alice: User, respiratory: Skill
) -> None:
    before = Case.objects.count()

    response: Any = api(alice).post(f"{API}cases/medical/", {**MEDICAL_BODY, "skill": "resp\x00iratory"}, format="json")

    # No service has such a code: the 404 of a service not offered.
    error = assert_error_shape(response, 404, "not_offered")
    assert "skill" in error["fields"]
    assert Case.objects.count() == before

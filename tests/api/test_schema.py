"""The API answers what its own OpenAPI schema says, whatever a client sends: schemathesis
generates requests for every operation of /api/v1/schema/ and runs its checks (no server error;
status, content type, headers and body as the schema says; authentication not ignored; unsupported
methods refused; a deleted resource gone; valid data accepted and invalid data refused: every
check schemathesis has, with schemathesis.toml's one word on uploads). It runs
anonymously, as the resident who owns a case, as the doctor assigned to it, as the lawyer
assigned to a labour dispute, and as a coordinator.

The generated references and document ids are random, so half of them are swapped for the real
case and document: the calls then reach the views' logic, not only the 404 of a missing case.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis import checks

from consult import services
from consult.models import Case, Document, Professional, User
from consult.wsgi import application
from legal import services as legal_services
from legal.models import Result
from tests.api.conftest import API, token_for, write_note
from tests.consult import files_corpus as corpus

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

# Every check runs, positive_data_acceptance and negative_data_rejection included (issue 14): a
# refusal by role is a 403, by state a 409, a service or city not offered a 404; the schema states
# the rules (a rating's 1 to 5, the consents that must be true, lengths, ranges, choices, amounts,
# and the rules between fields as anyOf); on_duty is required and true or false.

# The logouts revoke the token the run is using: every later call of that role would be a 401.
# They are checked on their own, last, below.
LOGOUTS = [f"{API}auth/logout/", f"{API}auth/logout/all/"]
full_schema = schemathesis.openapi.from_wsgi(f"{API}schema/", application)
schema = full_schema.exclude(path=LOGOUTS)

ROLES = ["anonymous", "resident", "doctor", "lawyer", "coordinator"]


class World:
    def __init__(self, case: Case, document: Document, headers: dict[str, str]) -> None:
        self.case = case
        self.document = document
        self.headers = headers


@contextmanager
def connection_kept_across_requests() -> Iterator[None]:
    """The WSGI handler closes the database connection around each request, which would end the
    test's transaction; Django's test client keeps it open the same way (and reconnects the
    closing after each of its own requests, so this must come after the last of those)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture(params=ROLES)
def world(
    request: pytest.FixtureRequest, case: Case, alice: User, doctor: Professional, coordinator: User, bob: User
) -> Iterator[World]:
    if request.param == "lawyer":
        # The lawyer's own case: Alice's sick-pay dispute, accepted, with a recorded outcome.
        case = request.getfixturevalue("legal_case")
        lawyer: Professional = request.getfixturevalue("lawyer")
        services.case_accept(case=case, professional=lawyer)
        legal_services.outcome_record(
            case=case, professional=lawyer, result=Result.SETTLED, amount_agreed=Decimal("598"),
            payment_due=timezone.localdate() + timedelta(days=14),
        )
    else:
        services.case_accept(case=case, professional=doctor)
        write_note(case, doctor)
    document, _new = services.document_add(
        case=case, uploader=alice, upload=SimpleUploadedFile("r.pdf", corpus.pdf()), name="r.pdf", kind="exam_report"
    )
    user = {
        "anonymous": None, "resident": alice, "doctor": doctor.user, "coordinator": coordinator,
        "lawyer": case.assignee.user if case.assignee else None,
    }[request.param]
    headers = {"Accept-Language": "en"}
    if user is not None:
        headers["Authorization"] = f"Token {token_for(user)}"
    with connection_kept_across_requests():
        yield World(case, document, headers)


def aim_at_real_objects(call: Any, world: World) -> None:
    """Every other generated reference (and document id) becomes the real one."""
    parameters = call.path_parameters
    if not parameters:
        return
    reference = parameters.get("reference")
    if isinstance(reference, str) and len(reference) % 2 == 0:
        parameters["reference"] = world.case.reference
    document_id = parameters.get("document_id")
    if isinstance(document_id, int) and document_id % 2 == 0:
        parameters["document_id"] = world.document.pk


@schema.parametrize()
@settings(
    # A few per operation and role: with the coverage phase's own cases, enough to find a wrong
    # shape, and the five roles stay within a few minutes.
    max_examples=4,
    deadline=None,
    # The same examples every run: a failure here is reproducible, never a fluke of the seed.
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_it_answers_every_operation_as_its_schema_says_without_a_server_error(case: Any, world: World) -> None:
    aim_at_real_objects(case, world)
    case.call_and_validate(headers=world.headers)


@pytest.mark.parametrize("path", LOGOUTS)
@pytest.mark.parametrize("role", ["owner", "assignee", "coordinator"])
def test_it_answers_logout_as_its_schema_says(
    role: str, path: str, case: Case, alice: User, doctor: Professional, coordinator: User
) -> None:
    user = {"owner": alice, "assignee": doctor.user, "coordinator": coordinator}[role]
    token = token_for(user)
    logout = full_schema[path]["POST"]

    with connection_kept_across_requests():
        response = logout.Case().call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
        again = logout.Case().call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

    assert response.status_code == 204
    assert again.status_code == 401

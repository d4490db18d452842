"""What a client gets when something is wrong, always in the one error shape: 400 with the fields
(in the language it asked for), 404 for missing and forbidden alike, 409 when the case moved on,
429 with Retry-After, 503 when the file store is down. And Idempotency-Key: a retry returns the
first answer and never makes a second case or document.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone, translation
from knox.models import AuthToken
from rest_framework.test import APIClient

from consult import services
from consult.limits import wait_message
from consult.models import Case, CaseEvent, Document, IdempotencyKey, Professional, Skill, Status, User, Verb
from consult.services import cases as case_services
from consult.services import idempotency
from medical import services as medical_services
from tests.api.conftest import (
    API,
    LEGAL_BODY,
    MEDICAL_BODY,
    NOTE_BODY,
    assert_error_shape,
    snapshot,
    submit_plain,
    token_client,
    token_for,
)
from tests.conftest import PASSWORD
from tests.consult import files_corpus as corpus
from tests.s3 import answered_within, free_port, hung_endpoint, s3_storage


def t(language: str, message: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


def upload(client: APIClient, case: Case, data: bytes | None = None, key: str | None = None, **extra: Any) -> Any:
    body = {
        "file": SimpleUploadedFile("检查报告.pdf", data or corpus.pdf(), content_type="application/pdf"),
        "kind": "exam_report",
    }
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(f"{API}cases/{case.reference}/documents/", body, format="multipart", **extra)


# --- 400: bad input, with the fields, in the client's language ------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_it_answers_bad_input_with_400_and_the_fields_in_the_language_asked_for(
    language: str, alice: User, respiratory: Skill
) -> None:
    client = token_client(token_for(alice), language)
    before = snapshot()

    response = client.post(
        f"{API}cases/medical/", {**MEDICAL_BODY, "complaint": "", "health_consent": False}, format="json"
    )

    error = assert_error_shape(response, 400, "invalid")
    assert error["message"] == t(language, "Please check the highlighted fields.")
    assert error["fields"] == {
        "complaint": [t(language, "This field is required.")],
        "health_consent": [t(language, "Please agree to the use of health information, or we cannot help you online.")],
    }
    assert snapshot() == before


def test_it_changes_the_language_of_the_message_not_its_code_or_fields(alice: User, respiratory: Skill) -> None:
    token = token_for(alice)
    bad = {**MEDICAL_BODY, "patient_age": 200}
    english = token_client(token, "en").post(f"{API}cases/medical/", bad, format="json").json()["error"]
    chinese = token_client(token, "zh-hans").post(f"{API}cases/medical/", bad, format="json").json()["error"]

    assert english["code"] == chinese["code"] == "invalid"
    assert set(english["fields"]) == set(chinese["fields"]) == {"patient_age"}
    assert english["message"] != chinese["message"]
    assert english["fields"]["patient_age"] != chinese["fields"]["patient_age"]
    assert english["message"].isascii()
    assert not chinese["message"].isascii()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_it_gives_the_reason_a_case_rule_refuses_in_the_language_asked_for(
    language: str, coordinator: User, respiratory: Skill
) -> None:
    response = token_client(token_for(coordinator), language).post(f"{API}cases/medical/", MEDICAL_BODY, format="json")

    error = assert_error_shape(response, 403, "not_resident")
    assert error["message"] == t(language, "Only residents open cases.")
    assert not Case.objects.exists()


def test_it_names_the_fields_of_a_bad_note(case: Case, doctor: Professional) -> None:
    services.case_accept(case=case, professional=doctor)
    client = token_client(token_for(doctor.user))
    before = snapshot()

    response = client.put(
        f"{API}cases/{case.reference}/note/",
        {**NOTE_BODY, "urgency": "whenever", "follow_up_date": "2001-01-01", "advice": ""},
        format="json",
    )

    error = assert_error_shape(response, 400, "invalid")
    assert set(error["fields"]) == {"urgency", "follow_up_date", "advice"}
    assert error["fields"]["follow_up_date"] == ["The follow-up date cannot be in the past."]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("queue/on-duty/", {"on_duty": "perhaps"}, "on_duty"),
        ("queue/on-duty/", {}, "on_duty"),
        ("track/", {"reference": "ABCD2345", "phone_last4": "12a4"}, "phone_last4"),
        ("auth/token/", {"phone": "13800000001"}, "password"),
    ],
    ids=["on-duty-not-a-boolean", "on-duty-missing", "track-bad-digits", "login-without-password"],
)
def test_it_names_the_offending_field_of_bad_input_on_any_endpoint(
    path: str, body: dict[str, Any], field: str, doctor: Professional
) -> None:
    client = token_client(token_for(doctor.user))
    before = snapshot()

    response = client.post(f"{API}{path}", body, format="json")

    error = assert_error_shape(response, 400, "invalid")
    assert list(error["fields"]) == [field]
    assert snapshot() == before


def test_it_refuses_message_history_bounds_that_are_not_whole_numbers(case: Case, alice: User) -> None:
    client = token_client(token_for(alice))

    for query in ("after=abc", "before=-1", "after=-5"):
        assert_error_shape(client.get(f"{API}cases/{case.reference}/messages/?{query}"), 400, "invalid")
    assert client.get(f"{API}cases/{case.reference}/messages/?after=0&before=10").status_code == 200


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("cases/medical/", "alice"),
        ("cases/legal/", "alice"),
        ("cases/{ref}/withdraw/", "alice"),
        ("cases/{ref}/rating/", "alice"),
        ("cases/{ref}/accept/", "doctor"),
        ("track/", "alice"),
    ],
)
@pytest.mark.parametrize("body", [["咳嗽"], 7, "text"], ids=["list", "number", "string"])
def test_it_refuses_a_body_that_is_not_an_object_with_400(
    path: str, who: str, body: Any, both_services: None, case: Case, request: pytest.FixtureRequest
) -> None:
    someone = request.getfixturevalue(who)
    client = token_client(token_for(someone if isinstance(someone, User) else someone.user))
    before = snapshot()

    response = client.post(f"{API}{path.format(ref=case.reference)}", body, format="json")

    error = assert_error_shape(response, 400, "invalid")
    assert list(error["fields"]) == ["non_field_errors"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("employment_start", ["2019-03-01"]), ("employment_start", 20190301), ("employment_start", True),
     ("job_title", {"zh": "挡车工"}), ("monthly_wage", [4000])],
)
def test_it_refuses_a_value_of_the_wrong_shape_with_400_naming_the_field(
    field: str, value: Any, both_services: None, alice: User
) -> None:
    client = token_client(token_for(alice))
    before = snapshot()

    response = client.post(f"{API}cases/legal/", {**LEGAL_BODY, field: value}, format="json")

    error = assert_error_shape(response, 400, "invalid")
    assert list(error["fields"]) == [field]
    assert snapshot() == before


@pytest.mark.parametrize("fmt", ["multipart", "form"])
def test_it_opens_a_case_from_a_form_body_exactly_as_from_json(
    fmt: str, both_services: None, alice: User
) -> None:
    body = {**MEDICAL_BODY, "health_consent": "on", "urgent_signs": ["breathing", "fainting"]}
    client = token_client(token_for(alice))
    if fmt == "form":
        from urllib.parse import urlencode

        response = client.post(
            f"{API}cases/medical/", urlencode(body, doseq=True), content_type="application/x-www-form-urlencoded"
        )
    else:
        response = client.post(f"{API}cases/medical/", body, format="multipart")

    assert response.status_code == 201, response.content
    intake = response.json()["domain"]["intake"]
    assert intake["complaint"] == MEDICAL_BODY["complaint"]
    assert intake["patient_age"] == MEDICAL_BODY["patient_age"]
    assert intake["urgent_signs"] == ["breathing", "fainting"]


@pytest.mark.parametrize(
    "path",
    ["cases/{ref}/documents/not-a-number/", "cases/{ref}/documents/1.5/", "cases/a/b/accept/", "no-such-endpoint/"],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_an_address_no_endpoint_has_with_the_json_404(
    path: str, method: str, case: Case, alice: User
) -> None:
    client = token_client(token_for(alice))

    response = getattr(client, method)(f"{API}{path.format(ref=case.reference)}")

    assert_error_shape(response, 404, "not_found")
    assert response.json() == token_client(None).get(f"{API}cases/ZZZZZZZZ/documents/x/").json()


@pytest.mark.parametrize(("method", "path"), [("get", "cases/legal/"), ("delete", "cases/"), ("put", "queue/claim/")])
def test_it_answers_a_method_an_endpoint_does_not_take_with_405_in_the_error_shape(
    method: str, path: str, alice: User
) -> None:
    client = token_client(token_for(alice))
    before = snapshot()

    response = getattr(client, method)(f"{API}{path}")

    assert_error_shape(response, 405, "method_not_allowed")
    assert snapshot() == before


# --- 404: missing and forbidden are the same answer -----------------------------------------------

CASE_CALLS = [
    ("GET", ""),
    ("POST", "accept/"),
    ("POST", "decline/"),
    ("POST", "resolve/"),
    ("POST", "close/"),
    ("POST", "withdraw/"),
    ("PUT", "note/"),
    ("PUT", "outcome/"),
    ("POST", "rating/"),
    ("GET", "documents/"),
    ("POST", "documents/"),
    ("GET", "documents/1/"),
    ("GET", "messages/"),
    ("POST", "messages/"),
]


def _missing(case: Case) -> str:
    return "ZZZZZZZZ" if case.reference != "ZZZZZZZZ" else "YYYYYYYY"


@pytest.mark.parametrize("outsider", ["bob", "other_doctor", "lawyer"])
@pytest.mark.parametrize(("method", "suffix"), CASE_CALLS, ids=[f"{m}-{s or 'detail'}" for m, s in CASE_CALLS])
def test_it_answers_a_forbidden_case_exactly_as_a_missing_one(
    method: str, suffix: str, outsider: str, case: Case, request: pytest.FixtureRequest
) -> None:
    someone = request.getfixturevalue(outsider)
    client = token_client(token_for(someone if isinstance(someone, User) else someone.user))
    call = {"GET": client.get, "POST": client.post, "PUT": client.put}[method]
    before = snapshot()

    forbidden = call(f"{API}cases/{case.reference}/{suffix}")
    missing = call(f"{API}cases/{_missing(case)}/{suffix}")

    assert_error_shape(forbidden, 404, "not_found")
    assert forbidden.status_code == missing.status_code
    assert forbidden.content == missing.content
    assert case.reference not in forbidden.content.decode()
    assert snapshot() == before


def test_it_answers_a_document_of_another_case_as_a_missing_document(
    case: Case, alice: User, bob: User, respiratory: Skill
) -> None:
    bobs_case = submit_plain(bob, respiratory)
    bobs_document, _new = services.document_add(
        case=bobs_case, uploader=bob, upload=SimpleUploadedFile("b.pdf", corpus.pdf(title="Bob")), name="b.pdf"
    )
    client = token_client(token_for(alice))

    under_own_case = client.get(f"{API}cases/{case.reference}/documents/{bobs_document.pk}/")
    missing = client.get(f"{API}cases/{case.reference}/documents/{bobs_document.pk + 1000}/")

    assert_error_shape(under_own_case, 404, "not_found")
    assert under_own_case.content == missing.content
    assert not CaseEvent.objects.filter(verb=Verb.DOCUMENT_VIEWED).exists()


# --- 409: the case moved on -----------------------------------------------------------------------


def test_it_answers_409_to_accepting_a_case_the_resident_withdrew_meanwhile(
    case: Case, alice: User, doctor: Professional
) -> None:
    client = token_client(token_for(doctor.user))
    assert "accept" in client.get(f"{API}cases/{case.reference}/").json()["actions"]  # what the app shows
    services.case_withdraw(case=case, resident=alice)
    before = snapshot()

    response = client.post(f"{API}cases/{case.reference}/accept/")

    assert_error_shape(response, 409, "invalid_transition")
    assert snapshot() == before
    case.refresh_from_db()
    assert case.status == Status.WITHDRAWN


def test_it_answers_409_to_a_second_accept_of_the_same_case(case: Case, doctor: Professional) -> None:
    client = token_client(token_for(doctor.user))
    assert client.post(f"{API}cases/{case.reference}/accept/").status_code == 200
    before = snapshot()

    again = client.post(f"{API}cases/{case.reference}/accept/")

    assert_error_shape(again, 409, "invalid_transition")
    assert snapshot() == before


def test_it_answers_404_to_accepting_a_case_since_given_to_another_doctor(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User
) -> None:
    client = token_client(token_for(doctor.user))
    services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)
    before = snapshot()

    response = client.post(f"{API}cases/{case.reference}/accept/")

    # No longer theirs, so no longer visible to them: the same answer as a missing case.
    assert_error_shape(response, 404, "not_found")
    assert snapshot() == before


def test_it_answers_409_when_the_case_is_given_to_someone_else_while_the_accept_is_under_way(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_accept = services.case_accept

    def accept_after_a_reassignment(*, case: Case, professional: Professional) -> Case:
        # The coordinator's reassignment commits after the view checked access, before the write.
        services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)
        return real_accept(case=case, professional=professional)

    monkeypatch.setattr(services, "case_accept", accept_after_a_reassignment)

    response = token_client(token_for(doctor.user)).post(f"{API}cases/{case.reference}/accept/")

    assert_error_shape(response, 409)
    case.refresh_from_db()
    assert case.assignee == other_doctor
    assert case.status == Status.ASSIGNED


@pytest.fixture
def rival_claims(
    monkeypatch: pytest.MonkeyPatch, other_doctor: Professional
) -> Callable[[int], list[Case]]:
    """`rival_claims(n)`: for the next `n` claims, `other_doctor` takes the case a claimer has just
    picked from the queue before the claimer's write lands (as a concurrent claim on another
    server would). Returns the cases the rival took. That window exists on the portable claim
    path (read the head of the line, then compare-and-set), which these tests take on every
    database: PostgreSQL's one-statement claim has no such window."""
    monkeypatch.setattr(case_services, "_claim_in_one_statement", lambda: False)
    real = case_services._transition
    taken: list[Case] = []
    remaining = [0]

    def racing(case: Case, to: str, **kwargs: Any) -> None:
        if kwargs.get("verb") == Verb.CLAIMED and remaining[0] > 0 and kwargs.get("assignee") != other_doctor:
            remaining[0] -= 1
            stolen = Case.objects.get(pk=case.pk)
            real(stolen, Status.ASSIGNED, actor=other_doctor.user, verb=Verb.CLAIMED, assignee=other_doctor)
            taken.append(stolen)
        real(case, to, **kwargs)

    monkeypatch.setattr(case_services, "_transition", racing)

    def arm(n: int) -> list[Case]:
        remaining[0] = n
        return taken

    return arm


@pytest.fixture
def line_of_cases(case: Case, bob: User, respiratory: Skill, doctor: Professional) -> Callable[[int], list[Case]]:
    """`line_of_cases(n)`: n of Bob's cases waiting in the respiratory line (nobody on duty)."""

    def make(n: int) -> list[Case]:
        services.professional_set_on_duty(professional=doctor, on_duty=False)
        waiting = [submit_plain(bob, respiratory) for _ in range(n)]
        assert all(c.status == Status.WAITING for c in waiting)
        # Back on duty by the flag: through the service the line would be handed to them unasked.
        doctor.on_duty, doctor.capacity = True, 50
        doctor.save(update_fields=["on_duty", "capacity"])
        return waiting

    return make


def test_it_gives_a_claimer_who_loses_the_race_for_the_last_case_nothing_and_never_that_case(
    line_of_cases: Callable[[int], list[Case]], rival_claims: Callable[[int], list[Case]], doctor: Professional,
    other_doctor: Professional,
) -> None:
    (last,) = line_of_cases(1)
    taken = rival_claims(1)
    client = token_client(token_for(doctor.user))

    response = client.post(f"{API}queue/claim/")

    assert response.status_code == 204
    assert taken == [last]
    last.refresh_from_db()
    assert last.assignee == other_doctor
    assert not CaseEvent.objects.filter(case=last, actor=doctor.user).exists()


def test_it_gives_a_claimer_who_loses_one_race_the_next_case_in_line(
    line_of_cases: Callable[[int], list[Case]], rival_claims: Callable[[int], list[Case]], doctor: Professional
) -> None:
    _first, second = line_of_cases(2)
    rival_claims(1)

    response = token_client(token_for(doctor.user)).post(f"{API}queue/claim/")

    assert response.status_code == 200
    assert response.json()["reference"] == second.reference
    assert response.json()["status"] == Status.ACTIVE


def test_it_answers_409_to_a_claimer_who_keeps_losing_the_race(
    line_of_cases: Callable[[int], list[Case]], rival_claims: Callable[[int], list[Case]], doctor: Professional,
    other_doctor: Professional,
) -> None:
    line = line_of_cases(12)
    taken = rival_claims(len(line))
    client = token_client(token_for(doctor.user))

    response = client.post(f"{API}queue/claim/")

    assert_error_shape(response, 409, "conflict")
    assert len(taken) == 10  # it tried ten times, each case went to the rival
    for waiting in line:
        waiting.refresh_from_db()
    assert [c.assignee for c in line] == [other_doctor] * 10 + [None] * 2


# --- 429: throttled, with Retry-After -------------------------------------------------------------


@pytest.fixture
def low_rates(settings: Any) -> dict[str, str]:
    # Hour-long windows: a count that ran over a window's end (they start on the clock) would start again.
    rates = {"login": "3/hour", "tracking": "2/hour", "uploads": "2/hour"}
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rates}
    return rates


def assert_throttled(response: Any, language: str = "en") -> None:
    error = assert_error_shape(response, 429, "throttled")
    wait = int(response["Retry-After"])
    assert 0 < wait <= 3600
    with translation.override(language):
        assert error["message"] == (
            translation.gettext("Too many requests. Please wait %(s)d seconds.") % {"s": wait}
            if wait < 120
            else wait_message(wait)
        )


def test_it_throttles_logins_with_429_and_retry_after_and_issues_no_token(low_rates: Any, alice: User) -> None:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    wrong = {"phone": alice.phone, "password": "wrong"}
    assert [client.post(f"{API}auth/token/", wrong, format="json").status_code for _ in range(3)] == [400] * 3

    # Even the right password waits: guessing must not be able to go on.
    response = client.post(f"{API}auth/token/", {"phone": alice.phone, "password": PASSWORD}, format="json")

    assert_throttled(response)
    assert not AuthToken.objects.exists()


def test_it_throttles_tracking_with_429_in_the_language_asked_for(low_rates: Any, case: Case, alice: User) -> None:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = {"reference": case.reference, "phone_last4": alice.phone[-4:]}
    assert [client.post(f"{API}track/", body, format="json").status_code for _ in range(2)] == [200, 200]

    assert_throttled(client.post(f"{API}track/", body, format="json"), "zh-hans")


def test_it_throttles_uploads_per_user_with_429_and_stores_nothing_more(
    low_rates: Any, case: Case, alice: User, doctor: Professional
) -> None:
    client = token_client(token_for(alice))
    assert [upload(client, case, corpus.jpeg(seed=n)).status_code for n in (1, 2)] == [201, 201]

    response = upload(client, case, corpus.jpeg(seed=3))

    assert_throttled(response)
    assert Document.objects.filter(case=case).count() == 2
    # Reading is not throttled, and the doctor has an allowance of their own.
    assert client.get(f"{API}cases/{case.reference}/documents/").status_code == 200
    assert upload(token_client(token_for(doctor.user)), case, corpus.jpeg(seed=4)).status_code == 201


def test_it_does_not_store_a_throttled_answer_under_the_idempotency_key(
    low_rates: Any, case: Case, alice: User
) -> None:
    client = token_client(token_for(alice))
    for n in (1, 2):
        upload(client, case, corpus.jpeg(seed=n))
    assert upload(client, case, corpus.jpeg(seed=3), key="third").status_code == 429
    cache.clear()  # the hour has passed

    retry = upload(client, case, corpus.jpeg(seed=3), key="third")

    assert retry.status_code == 201
    assert "Idempotent-Replay" not in retry


# --- 503: the file store is down ------------------------------------------------------------------


@pytest.fixture
def dead_store(settings: Any) -> None:
    """S3 on a loopback port where nothing listens; one attempt, so no time goes on retries."""
    config = Config(signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(endpoint=f"http://127.0.0.1:{free_port()}", bucket="consult-down", client_config=config),
    }


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_it_answers_503_when_the_file_store_is_down_and_keeps_no_document(
    dead_store: None, case: Case, alice: User, language: str
) -> None:
    client = token_client(token_for(alice), language)
    before = snapshot()

    response = upload(client, case)

    error = assert_error_shape(response, 503, "storage_unavailable")
    assert error["message"] == t(
        language, "The file store cannot be reached right now. Nothing was saved. Please try again in a few minutes."
    )
    assert not Document.objects.exists()
    assert snapshot() == before


def test_it_lets_a_retry_with_the_same_key_succeed_once_the_store_is_back(
    settings: Any, private_storage: Any, case: Case, alice: User
) -> None:
    working = settings.STORAGES
    client = token_client(token_for(alice))
    settings.STORAGES = {
        **working,
        "default": s3_storage(
            endpoint=f"http://127.0.0.1:{free_port()}", bucket="consult-down",
            client_config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
        ),
    }
    assert upload(client, case, key="report-1").status_code == 503
    settings.STORAGES = working

    retry = upload(client, case, key="report-1")

    assert retry.status_code == 201
    assert "Idempotent-Replay" not in retry
    assert Document.objects.filter(case=case).count() == 1


# --- Idempotency-Key ------------------------------------------------------------------------------

CREATIONS = [
    pytest.param("cases/medical/", MEDICAL_BODY, id="medical"),
    pytest.param("cases/legal/", LEGAL_BODY, id="legal"),
]


@pytest.fixture
def both_services(
    respiratory: Skill, sick_pay: Skill, doctor: Professional, lawyer: Professional, hangzhou: Any
) -> None:
    """Both kinds of case can be opened and are assigned at once."""


@pytest.mark.parametrize(("path", "body"), CREATIONS)
def test_it_returns_the_first_case_to_a_retry_with_the_same_key_and_opens_no_second(
    path: str, body: dict[str, Any], both_services: None, alice: User
) -> None:
    client = token_client(token_for(alice))

    first = client.post(f"{API}{path}", body, format="json", HTTP_IDEMPOTENCY_KEY="open-1")
    retry = client.post(f"{API}{path}", body, format="json", HTTP_IDEMPOTENCY_KEY="open-1")

    assert first.status_code == retry.status_code == 201
    assert "Idempotent-Replay" not in first
    assert retry["Idempotent-Replay"] == "true"
    assert retry.json()["reference"] == first.json()["reference"]
    assert retry.json() == first.json()
    assert Case.objects.filter(resident=alice).count() == 1


@pytest.mark.parametrize(("path", "body"), CREATIONS)
def test_it_opens_a_case_for_each_call_without_a_key(
    path: str, body: dict[str, Any], both_services: None, alice: User
) -> None:
    # The other half of the test above: it is the key that makes a call a retry.
    client = token_client(token_for(alice))

    references = {client.post(f"{API}{path}", body, format="json").json()["reference"] for _ in range(2)}

    assert len(references) == 2


def test_it_replays_the_first_answer_even_when_a_retry_carries_a_different_body(
    both_services: None, alice: User
) -> None:
    client = token_client(token_for(alice))
    first = client.post(f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")

    retry = client.post(
        f"{API}cases/medical/", {**MEDICAL_BODY, "complaint": "头痛"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert retry.json()["reference"] == first.json()["reference"]
    assert retry.json()["domain"]["intake"]["complaint"] == MEDICAL_BODY["complaint"]
    assert Case.objects.count() == 1


def test_it_keeps_another_users_identical_key_apart(both_services: None, alice: User, bob: User) -> None:
    alices = token_client(token_for(alice)).post(
        f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    bobs = token_client(token_for(bob)).post(
        f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )

    assert bobs.status_code == 201
    assert "Idempotent-Replay" not in bobs
    assert bobs.json()["reference"] != alices.json()["reference"]
    assert Case.objects.get(reference=bobs.json()["reference"]).resident == bob


def test_it_answers_422_to_a_key_reused_on_another_endpoint_and_does_nothing(
    both_services: None, alice: User
) -> None:
    client = token_client(token_for(alice))
    opened = client.post(f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    case = Case.objects.get(reference=opened.json()["reference"])
    before = snapshot()

    on_upload = upload(client, case, key="k-1")
    on_legal = client.post(f"{API}cases/legal/", LEGAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert_error_shape(on_upload, 422, "idempotency_key_reused")
    assert_error_shape(on_legal, 422, "idempotency_key_reused")
    assert snapshot() == before


def test_it_refuses_an_idempotency_key_longer_than_it_can_keep(both_services: None, alice: User) -> None:
    response = token_client(token_for(alice)).post(
        f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101
    )

    assert_error_shape(response, 400, "invalid")
    assert not Case.objects.exists()


def test_it_returns_the_first_document_to_an_upload_retry_with_the_same_key(case: Case, alice: User) -> None:
    client = token_client(token_for(alice))
    first = upload(client, case, corpus.jpeg(seed=1), key="photo-1")

    same_bytes = upload(client, case, corpus.jpeg(seed=1), key="photo-1")
    other_bytes = upload(client, case, corpus.jpeg(seed=2), key="photo-1")

    assert first.status_code == 201
    # Without the key the same bytes would answer 200 (already stored): the 201 is the replay.
    for retry in (same_bytes, other_bytes):
        assert retry.status_code == 201
        assert retry["Idempotent-Replay"] == "true"
        assert retry.json() == first.json()
    assert list(Document.objects.filter(case=case).values_list("pk", flat=True)) == [first.json()["id"]]


def test_it_keeps_upload_keys_of_two_users_on_one_case_apart(case: Case, alice: User, doctor: Professional) -> None:
    alices = upload(token_client(token_for(alice)), case, corpus.jpeg(seed=1), key="scan")
    doctors = upload(token_client(token_for(doctor.user)), case, corpus.jpeg(seed=2), key="scan")

    assert alices.status_code == doctors.status_code == 201
    assert "Idempotent-Replay" not in doctors
    assert alices.json()["id"] != doctors.json()["id"]
    assert IdempotencyKey.objects.filter(key="scan").count() == 2


@pytest.fixture
def threads_close_connections() -> Iterator[list[threading.Thread]]:
    started: list[threading.Thread] = []
    yield started
    for thread in started:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in started)


@pytest.mark.django_db(transaction=True)
def test_it_opens_one_case_when_two_retries_with_the_same_key_arrive_at_once(
    both_services: None, alice: User, monkeypatch: pytest.MonkeyPatch,
    threads_close_connections: list[threading.Thread],
) -> None:
    token = token_for(alice)
    real_submit = medical_services.medical_case_submit
    # Each call waits (at most 2 s) for the other to reach the same point: without a guard both
    # get there and each opens a case; with one, the second waits for the first to finish.
    both_inside = threading.Barrier(2, timeout=2)

    def submit_when_both_are_inside(**kwargs: Any) -> Any:
        try:
            both_inside.wait()
        except threading.BrokenBarrierError:
            pass
        return real_submit(**kwargs)

    monkeypatch.setattr(medical_services, "medical_case_submit", submit_when_both_are_inside)
    answers: list[Any] = []

    def retry() -> None:
        try:
            answers.append(
                token_client(token).post(f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="x")
            )
        finally:
            connection.close()

    for _ in range(2):
        thread = threading.Thread(target=retry)
        threads_close_connections.append(thread)
        thread.start()
    for thread in threads_close_connections:
        thread.join(timeout=30)

    assert [a.status_code for a in answers] == [201, 201]
    assert len({a.json()["reference"] for a in answers}) == 1
    assert Case.objects.filter(resident=alice).count() == 1
    assert sorted(a.get("Idempotent-Replay", "") for a in answers) == ["", "true"]


# --- the key is never held while the file store works ----------------------------------------------


def test_it_answers_503_within_seconds_when_the_s3_endpoint_hangs_and_gives_the_key_back(
    settings: Any, private_storage: Any, case: Case, alice: User
) -> None:
    working = settings.STORAGES
    client = token_client(token_for(alice))
    with hung_endpoint() as endpoint:
        settings.STORAGES = {**working, "default": s3_storage(endpoint=endpoint, bucket="consult-hung")}
        # botocore's own timeouts (60 s a read, with retries) would keep this call for minutes.
        with answered_within(30):
            response = upload(client, case, key="scan-1")

    assert_error_shape(response, 503, "storage_unavailable")
    assert not Document.objects.exists()
    assert not IdempotencyKey.objects.exists()
    settings.STORAGES = working
    assert upload(client, case, key="scan-1").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_it_calls_the_file_store_outside_every_database_transaction(
    private_storage: Any, case: Case, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store call inside a transaction holds its locks (on SQLite, the whole database) for as long
    # as the store takes to answer: a hung S3 endpoint held the Idempotency-Key's for 3 minutes.
    calls: list[tuple[str, bool]] = []
    for name in ("_open", "_save", "delete", "exists"):
        real = getattr(FileSystemStorage, name)

        def watched(self: Any, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append((_name, connection.in_atomic_block))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(FileSystemStorage, name, watched)
    client = token_client(token_for(alice))

    first = upload(client, case, corpus.jpeg(seed=1), key="photo-1")
    same_bytes = upload(client, case, corpus.jpeg(seed=1))

    assert (first.status_code, same_bytes.status_code) == (201, 200)
    assert {name for name, _inside in calls} >= {"_save"}
    assert [call for call in calls if call[1]] == []


def test_it_answers_409_while_the_first_request_with_the_key_is_still_running(
    both_services: None, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first request took the key and has not answered (yet): a retry waits, then says so.
    IdempotencyKey.objects.create(user=alice, key="slow", endpoint=f"{API}cases/medical/", status=idempotency.PENDING)
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.3)
    client = token_client(token_for(alice))
    before = snapshot()

    response = client.post(
        f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="slow"
    )

    assert_error_shape(response, 409, "idempotency_key_in_use")
    assert int(response["Retry-After"]) > 0
    assert snapshot() == before


def test_it_runs_a_retry_whose_first_request_died_without_answering(both_services: None, alice: User) -> None:
    # The process of the first request was killed after it took the key: the key does not stay
    # blocked for ever.
    IdempotencyKey.objects.create(
        user=alice, key="orphan", endpoint=f"{API}cases/medical/", status=idempotency.PENDING,
        created_at=timezone.now() - idempotency.STALE_AFTER - timedelta(seconds=1),
    )

    response = token_client(token_for(alice)).post(
        f"{API}cases/medical/", MEDICAL_BODY, format="json", HTTP_IDEMPOTENCY_KEY="orphan"
    )

    assert response.status_code == 201
    assert "Idempotent-Replay" not in response
    assert IdempotencyKey.objects.get(key="orphan").body["reference"] == response.json()["reference"]


def test_it_stores_a_message_sent_twice_over_http_once(case: Case, alice: User) -> None:
    # The chat's HTTP fallback needs no Idempotency-Key: the message's client id is its key.
    client = token_client(token_for(alice))
    body = {"client_id": "phone-7", "body": "报告已上传，请看。"}

    first = client.post(f"{API}cases/{case.reference}/messages/", body, format="json")
    again = client.post(f"{API}cases/{case.reference}/messages/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["seq"] == again.json()["seq"]
    assert again.json()["created"] is False
    assert case.messages.filter(client_id="phone-7").count() == 1

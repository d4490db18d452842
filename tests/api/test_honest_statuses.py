"""The API answers what its schema says (issue 14: schemathesis's positive and negative data checks).

A refusal for who asks is a 403, one for the state the case or the professional is in a 409, both in
the error shape and the language asked for, and nothing changes. Naming a service (or a city) that
is not offered is a 404. What the schema calls malformed is refused (400), and what it calls well
formed is not refused for its shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from rest_framework.test import APIClient

from consult import services
from consult.models import Case, Professional, Rating, Skill, User
from legal.models import MediationOutcome, Result
from tests.api.conftest import (
    API,
    LEGAL_BODY,
    MEDICAL_BODY,
    NOTE_BODY,
    assert_error_shape,
    snapshot,
    write_note,
)
from tests.consult import files_corpus as corpus

Api = Callable[..., APIClient]


def t(language: str, message: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


def closed(case: Case, doctor: Professional) -> Case:
    services.case_accept(case=case, professional=doctor)
    write_note(case, doctor)
    services.case_resolve(case=case, professional=doctor)
    return services.case_close(case=case, user=doctor.user)


# --- 403: refused for who asks -------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_it_refuses_the_doctor_a_withdrawal_with_403_in_the_language_asked_for(
    language: str, api: Api, case: Case, doctor: Professional
) -> None:
    client = api(doctor.user, language)
    before = snapshot()

    response = client.post(f"{API}cases/{case.reference}/withdraw/", {}, format="json")

    error = assert_error_shape(response, 403, "permission_denied")
    assert error["message"] == t(language, "Only the resident who opened the case can withdraw it.")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("cases/{ref}/accept/", "not_professional", "Only doctors and lawyers have a queue."),
        (
            "cases/{ref}/close/",
            "permission_denied",
            "Only the assigned professional or a coordinator can close a case.",
        ),
        ("queue/claim/", "not_professional", "Only doctors and lawyers have a queue."),
    ],
)
def test_it_refuses_the_resident_a_professional_s_call_with_403(
    path: str, code: str, message: str, api: Api, case: Case, doctor: Professional, alice: User
) -> None:
    services.case_accept(case=case, professional=doctor)
    write_note(case, doctor)
    services.case_resolve(case=case, professional=doctor)
    client = api(alice, "zh-hans")
    before = snapshot()

    response = client.post(f"{API}{path.format(ref=case.reference)}", {}, format="json")

    error = assert_error_shape(response, 403, code)
    assert error["message"] == t("zh-hans", message)
    assert snapshot() == before


def test_it_refuses_a_coordinator_a_new_case_with_403(api: Api, coordinator: User, respiratory: Skill) -> None:
    response = api(coordinator).post(f"{API}cases/medical/", MEDICAL_BODY, format="json")

    error = assert_error_shape(response, 403, "not_resident")
    assert error["message"] == "Only residents open cases."
    assert not Case.objects.exists()


def test_it_refuses_the_coordinator_a_note_with_403(
    api: Api, case: Case, doctor: Professional, coordinator: User
) -> None:
    services.case_accept(case=case, professional=doctor)
    client = api(coordinator)
    before = snapshot()

    response = client.put(f"{API}cases/{case.reference}/note/", NOTE_BODY, format="json")

    error = assert_error_shape(response, 403, "not_assignee")
    assert error["message"] == "Only the doctor the case is assigned to can write the note."
    assert snapshot() == before


def test_it_refuses_a_staff_number_a_login_code_with_403(api: Api, doctor: Professional) -> None:
    response = APIClient(HTTP_ACCEPT_LANGUAGE="en").post(
        f"{API}auth/code/", {"phone": doctor.user.phone, "purpose": "login"}, format="json"
    )

    assert_error_shape(response, 403, "staff_password_only")


def test_it_refuses_a_code_that_was_never_sent_with_403(api: Api, alice: User) -> None:
    response = APIClient().post(f"{API}auth/code/token/", {"phone": alice.phone, "code": "123456"}, format="json")

    assert_error_shape(response, 403, "no_code")


# --- 409: refused for the state things are in ----------------------------------------------


def test_it_answers_409_to_a_rating_before_the_case_is_closed(api: Api, case: Case, alice: User) -> None:
    client = api(alice)

    response = client.post(f"{API}cases/{case.reference}/rating/", {"score": 5}, format="json")

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == "A case can be rated once it is closed."
    assert not Rating.objects.exists()


def test_it_answers_409_to_a_second_rating(api: Api, case: Case, alice: User, doctor: Professional) -> None:
    closed(case, doctor)
    client = api(alice, "zh-hans")
    assert client.post(f"{API}cases/{case.reference}/rating/", {"score": 5}, format="json").status_code == 201

    response = client.post(f"{API}cases/{case.reference}/rating/", {"score": 1}, format="json")

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == t("zh-hans", "This case has already been rated. Thank you!")
    assert Rating.objects.get().score == 5


def test_it_answers_409_to_a_note_before_the_case_is_accepted(api: Api, case: Case, doctor: Professional) -> None:
    client = api(doctor.user)
    before = snapshot()

    response = client.put(f"{API}cases/{case.reference}/note/", NOTE_BODY, format="json")

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == "Accept the case before writing the note."
    assert snapshot() == before


def test_it_answers_409_to_resolving_before_the_note(api: Api, case: Case, doctor: Professional) -> None:
    services.case_accept(case=case, professional=doctor)
    client = api(doctor.user)

    response = client.post(f"{API}cases/{case.reference}/resolve/", {}, format="json")

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == "Write the consultation note before marking the case resolved."


def test_it_answers_409_to_an_outcome_before_the_case_is_accepted(
    api: Api, legal_case: Case, lawyer: Professional
) -> None:
    client = api(lawyer.user)

    response = client.put(
        f"{API}cases/{legal_case.reference}/outcome/",
        {"result": "settled", "amount_agreed": "600", "payment_due": "2030-01-31"},
        format="json",
    )

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == "Accept the case before recording the mediation."
    assert not MediationOutcome.objects.exists()


def test_it_answers_409_to_a_file_or_a_message_on_a_finished_case(
    api: Api, case: Case, alice: User, doctor: Professional
) -> None:
    closed(case, doctor)
    client = api(alice)
    before = snapshot()

    upload = client.post(
        f"{API}cases/{case.reference}/documents/",
        {"file": SimpleUploadedFile("r.pdf", corpus.pdf()), "kind": "exam_report"},
        format="multipart",
    )
    message = client.post(
        f"{API}cases/{case.reference}/messages/", {"client_id": "c-1", "body": "还在吗？"}, format="json"
    )

    assert assert_error_shape(upload, 409, "wrong_state")["message"] == (
        "This case is finished; files can no longer be added."
    )
    assert assert_error_shape(message, 409, "wrong_state")["message"] == "This case is finished; the chat is closed."
    assert snapshot() == before


def test_it_answers_409_to_a_file_when_the_case_holds_all_it_may(
    api: Api, case: Case, alice: User, settings: Any
) -> None:
    settings.UPLOAD_MAX_FILES_PER_CASE = 1
    client = api(alice)
    first = client.post(
        f"{API}cases/{case.reference}/documents/",
        {"file": SimpleUploadedFile("a.pdf", corpus.pdf(title="A")), "kind": "exam_report"},
        format="multipart",
    )
    assert first.status_code == 201, first.content

    response = client.post(
        f"{API}cases/{case.reference}/documents/",
        {"file": SimpleUploadedFile("b.pdf", corpus.pdf(title="B")), "kind": "exam_report"},
        format="multipart",
    )

    assert_error_shape(response, 409, "too_many_files")
    assert case.documents.count() == 1


def test_it_answers_415_to_a_file_of_a_type_it_does_not_take(api: Api, case: Case, alice: User) -> None:
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"

    response = api(alice, "zh-hans").post(
        f"{API}cases/{case.reference}/documents/",
        {"file": SimpleUploadedFile("photo.gif", gif), "kind": "other"},
        format="multipart",
    )

    error = assert_error_shape(response, 415, "type")
    assert error["message"] == t(
        "zh-hans", "This type of file is not accepted. Please send a PDF or a photo (JPEG, PNG, WebP, HEIC)."
    )
    assert not case.documents.exists()


def test_it_answers_409_to_a_claim_off_duty(api: Api, other_doctor: Professional) -> None:
    response = api(other_doctor.user).post(f"{API}queue/claim/", format="json")

    error = assert_error_shape(response, 409, "wrong_state")
    assert error["message"] == "Go on duty before taking cases."


def test_it_answers_409_to_a_new_number_that_is_already_the_user_s(api: Api, alice: User) -> None:
    response = api(alice).post(f"{API}auth/code/", {"phone": alice.phone, "purpose": "change_phone"}, format="json")

    assert_error_shape(response, 409, "same_phone")


# --- 404: what the request names is not offered -------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_it_answers_404_to_a_service_that_is_not_offered(
    language: str, api: Api, alice: User, respiratory: Skill
) -> None:
    response = api(alice, language).post(f"{API}cases/medical/", {**MEDICAL_BODY, "skill": "dentistry"}, format="json")

    error = assert_error_shape(response, 404, "not_offered")
    not_offered = t(language, "No service with this code is offered: see the list of services.")
    assert error["fields"] == {"skill": [not_offered]}
    assert not Case.objects.exists()


def test_it_answers_404_to_a_city_the_service_has_no_rates_for(
    api: Api, alice: User, sick_pay: Skill, hangzhou: Any
) -> None:
    response = api(alice).post(f"{API}cases/legal/", {**LEGAL_BODY, "city": "拉萨"}, format="json")

    error = assert_error_shape(response, 404, "not_offered")
    assert list(error["fields"]) == ["city"]
    assert not Case.objects.exists()


def test_it_answers_404_to_a_message_with_a_document_that_is_not_on_the_case(
    api: Api, case: Case, doctor: Professional, alice: User
) -> None:
    services.case_accept(case=case, professional=doctor)
    client = api(alice)
    before = snapshot()

    response = client.post(
        f"{API}cases/{case.reference}/messages/", {"client_id": "c-1", "document_id": 999_999}, format="json"
    )

    assert assert_error_shape(response, 404, "document")["message"] == "That document is not on this case."
    assert snapshot() == before


# --- malformed as the schema says: refused ---------------------------------------------------


def test_it_refuses_an_on_duty_switch_that_does_not_say_which(api: Api, doctor: Professional) -> None:
    client = api(doctor.user)

    missing = client.post(f"{API}queue/on-duty/", "", content_type="application/x-www-form-urlencoded")
    a_number = client.post(f"{API}queue/on-duty/", {"on_duty": 0}, format="json")

    assert list(assert_error_shape(missing, 400, "invalid")["fields"]) == ["on_duty"]
    assert list(assert_error_shape(a_number, 400, "invalid")["fields"]) == ["on_duty"]
    doctor.refresh_from_db()
    assert doctor.on_duty is True


def test_it_refuses_a_consent_that_is_not_true_or_false(api: Api, alice: User, respiratory: Skill) -> None:
    response = api(alice).post(f"{API}cases/medical/", {**MEDICAL_BODY, "health_consent": "yes"}, format="json")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["health_consent"]
    assert not Case.objects.exists()


def test_it_refuses_a_skip_that_is_not_true_or_false(
    api: Api, case: Case, alice: User, doctor: Professional
) -> None:
    closed(case, doctor)

    response = api(alice).post(f"{API}cases/{case.reference}/rating/", {"skip": 1}, format="json")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["skip"]
    assert not Rating.objects.exists()


def test_it_refuses_a_phone_longer_than_the_schema_allows_even_of_dashes(db: Any) -> None:
    client = APIClient()

    response = client.post(f"{API}auth/code/", {"phone": "130--0-0-0-0-0-0-0-0-", "purpose": "signup"}, format="json")
    spaced = client.post(f"{API}auth/code/", {"phone": "+86 139 0000 1111", "purpose": "signup"}, format="json")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["phone"]
    assert spaced.status_code == 202


# --- well formed as the schema says: not refused for its shape ------------------------------


def test_it_ignores_a_field_the_form_does_not_read_whatever_its_shape(
    api: Api, case: Case, doctor: Professional
) -> None:
    response = api(doctor.user).post(
        f"{API}cases/{case.reference}/decline/", {"reason": "不在我的专业范围", "extra": {"a": [1]}}, format="json"
    )

    assert response.status_code == 204


def test_it_reads_null_in_a_form_body_as_no_date(api: Api, legal_case: Case, lawyer: Professional) -> None:
    services.case_accept(case=legal_case, professional=lawyer)
    body = {"result": "withdrawn", "payment_due": "null", "arbitration_deadline": "null", "amount_agreed": ""}

    response = api(lawyer.user).put(
        f"{API}cases/{legal_case.reference}/outcome/", urlencode(body), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200, response.content
    outcome = MediationOutcome.objects.get()
    assert (outcome.result, outcome.payment_due, outcome.arbitration_deadline) == (Result.WITHDRAWN, None, None)


# --- the schema states the rules -------------------------------------------------------------


@pytest.fixture
def components(db: Any) -> dict[str, Any]:
    response = APIClient().get(f"{API}schema/", {"format": "json"})
    assert response.status_code == 200
    schemas: dict[str, Any] = response.json()["components"]["schemas"]
    return schemas


def test_it_states_a_rating_s_range_and_that_it_needs_a_score_or_a_skip(components: dict[str, Any]) -> None:
    rating = components["RatingRequest"]

    assert (rating["properties"]["score"]["minimum"], rating["properties"]["score"]["maximum"]) == (1, 5)
    assert rating["anyOf"][0] == {"required": ["score"]}
    assert rating["anyOf"][1]["required"] == ["skip"]


def test_it_states_the_consents_that_must_be_given(components: dict[str, Any]) -> None:
    true_only = {"$ref": "#/components/schemas/TrueEnum"}

    assert components["TrueEnum"] == {"type": "boolean", "enum": [True]}
    assert components["MedicalCaseCreateRequest"]["properties"]["health_consent"]["allOf"] == [true_only]
    assert components["LegalCaseCreateRequest"]["properties"]["share_consent"]["allOf"] == [true_only]


def test_it_states_the_document_kinds_and_the_intake_limits(components: dict[str, Any]) -> None:
    medical = components["MedicalCaseCreateRequest"]["properties"]
    legal = components["LegalCaseCreateRequest"]["properties"]
    kinds_ref = components["DocumentUploadRequest"]["properties"]["kind"]["allOf"][0]["$ref"]
    kinds = components[kinds_ref.rsplit("/", 1)[1]]["enum"]

    assert "summary" not in kinds and "exam_report" in kinds
    assert (medical["patient_age"]["minimum"], medical["patient_age"]["maximum"]) == (0, 130)
    assert medical["complaint"]["maxLength"] == 2000
    assert "amount_received" in components["LegalCaseCreateRequest"]["required"]
    assert legal["monthly_wage"]["pattern"]
    assert components["OnDutyRequest"]["required"] == ["on_duty"]
    assert [rule["required"] for rule in components["MessageCreateRequest"]["anyOf"]] == [["body"], ["document_id"]]



def test_it_answers_going_on_duty_with_the_cases_given(
    api: Api, alice: User, respiratory: Skill, other_doctor: Professional
) -> None:
    first = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    second = services.case_submit(resident=alice, skill=respiratory, description="发烧三天。")

    answer = api(other_doctor.user).post(f"{API}queue/on-duty/", {"on_duty": True}, format="json")
    off = api(other_doctor.user).post(f"{API}queue/on-duty/", {"on_duty": False}, format="json")

    assert answer.status_code == 200
    assert answer.json() == {"on_duty": True, "given": [first.reference, second.reference]}
    assert off.json() == {"on_duty": False, "given": []}

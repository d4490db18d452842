"""A resident's request to erase a case's personal details (PIPL art. 47): asked on the case page
or the API, seen and answered by a coordinator of the case's domain only (approved: anonymised as
at the end of retention; refused: with a reason), the resident told through the notices outbox,
and the request and its handling kept on the timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from consult import services
from consult.models import Case, CaseEvent, Kind, Status, User, Verb
from medical.models import MedicalIntake
from notices.kinds import NoticeKind
from notices.models import Notice
from privacy.models import ErasureRequest, ErasureStatus

pytestmark = pytest.mark.django_db

REFUSAL = "该案件正在劳动仲裁中，依法需要保留材料。"


@pytest.fixture
def hospital(db: Any) -> User:
    return services.coordinator_create(
        phone="13600000002", name="吴协调", password="x-Long-pass-9", domains=[Kind.MEDICAL]
    )


@pytest.fixture
def union(db: Any) -> User:
    return services.coordinator_create(
        phone="13600000003", name="郑协调", password="x-Long-pass-9", domains=[Kind.LEGAL]
    )


def ask(client: Client, case: Case, reason: str = "不想再保留") -> Any:
    return client.post(reverse("privacy:erasure_ask", args=[case.reference]), {"reason": reason})


def decide(client: Client, case: Case, decision: str, answer: str = "") -> Any:
    url = reverse("privacy:erasure_decide", args=[case.reference])
    return client.post(url, {"decision": decision, "answer": answer})


def test_the_resident_asks_on_her_case_page_and_sees_it_waiting(
    lived_case: Case, alice: User, login: Any
) -> None:
    client = login(alice, "en")
    page = client.get(reverse("case_detail", args=[lived_case.reference])).content.decode()
    assert reverse("privacy:erasure_ask", args=[lived_case.reference]) in page

    response = ask(client, lived_case)
    assert response.status_code == 302 and response["Location"].endswith("#erasure")
    request = ErasureRequest.objects.get(case=lived_case)
    assert (request.status, request.requested_by, request.reason) == (ErasureStatus.PENDING, alice, "不想再保留")
    assert CaseEvent.objects.filter(case=lived_case, verb=Verb.ERASURE_REQUESTED, actor=alice).exists()
    page = client.get(reverse("case_detail", args=[lived_case.reference])).content.decode()
    assert "waiting for a coordinator" in page
    assert reverse("privacy:erasure_ask", args=[lived_case.reference]) not in page  # one at a time
    ask(client, lived_case)
    assert ErasureRequest.objects.filter(case=lived_case).count() == 1


def test_asking_on_an_open_case_withdraws_it(case: Case, alice: User, login: Any) -> None:
    ask(login(alice), case)
    case.refresh_from_db()
    assert case.status == Status.WITHDRAWN
    assert ErasureRequest.objects.get(case=case).is_pending


def test_nobody_else_can_ask_for_her_case(lived_case: Case, bob: User, doctor: Any, login: Any) -> None:
    assert ask(login(bob), lived_case).status_code == 404
    ask(login(doctor.user), lived_case)  # on the case, but not hers: refused with a message
    assert not ErasureRequest.objects.exists()


def test_only_a_coordinator_of_the_cases_domain_sees_and_decides_it(
    lived_case: Case, alice: User, hospital: User, union: User, login: Any
) -> None:
    ask(login(alice), lived_case)
    listed = login(hospital).get(reverse("privacy:erasure_list")).content.decode()
    assert lived_case.reference in listed and "不想再保留" in listed
    assert "Erasure requests (1)" in login(hospital, "en").get(reverse("dashboard")).content.decode()

    union_client = login(union)
    assert lived_case.reference not in union_client.get(reverse("privacy:erasure_list")).content.decode()
    assert decide(union_client, lived_case, "approve").status_code == 404
    assert ErasureRequest.objects.get(case=lived_case).is_pending
    assert MedicalIntake.objects.get(case=lived_case).patient_name == "王老汉"
    # A resident has no such page.
    assert login(alice).get(reverse("privacy:erasure_list")).status_code == 404


def test_an_approval_anonymises_the_case_tells_her_and_keeps_the_trail(
    lived_case: Case, alice: User, hospital: User, login: Any, private_files: Path, sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    ask(login(alice), lived_case)
    with django_capture_on_commit_callbacks(execute=True):
        response = decide(login(hospital), lived_case, "approve")
    assert response.status_code == 302

    request = ErasureRequest.objects.get(case=lived_case)
    assert (request.status, request.decided_by, request.reason) == (ErasureStatus.APPROVED, hospital, "")
    case = Case.objects.get(pk=lived_case.pk)
    assert case.anonymised_at is not None
    assert MedicalIntake.objects.get(case=case).patient_name == ""
    assert not [p for p in (private_files / "cases").rglob("*") if p.is_file()]
    verbs = list(CaseEvent.objects.filter(case=case).values_list("verb", "actor_id"))
    assert verbs[-3:] == [
        (Verb.ERASURE_REQUESTED, alice.pk), (Verb.ANONYMISED, hospital.pk), (Verb.ERASURE_APPROVED, hospital.pk)
    ]
    notice = Notice.objects.get(case=case, kind=NoticeKind.ERASURE_APPROVED)
    assert notice.user == alice
    # Delivered through the outbox to her phone, in her language.
    assert any(alice.phone in str(sms) and case.reference in str(sms) for sms in sms_outbox), sms_outbox
    page = login(alice, "en").get(reverse("case_detail", args=[case.reference])).content.decode()
    assert "approved: personal details removed" in page and "Kept as the law allows" in page


def test_a_refusal_needs_a_reason_which_she_is_told(
    lived_case: Case, alice: User, hospital: User, login: Any
) -> None:
    ask(login(alice), lived_case)
    client = login(hospital)
    decide(client, lived_case, "refuse")
    assert ErasureRequest.objects.get(case=lived_case).is_pending
    decide(client, lived_case, "refuse", REFUSAL)
    request = ErasureRequest.objects.get(case=lived_case)
    assert (request.status, request.answer, request.decided_by) == (ErasureStatus.REFUSED, REFUSAL, hospital)
    assert Case.objects.get(pk=lived_case.pk).anonymised_at is None
    assert CaseEvent.objects.filter(case=lived_case, verb=Verb.ERASURE_REFUSED, actor=hospital).exists()
    assert Notice.objects.filter(case=lived_case, kind=NoticeKind.ERASURE_REFUSED, user=alice).exists()
    page = login(alice).get(reverse("case_detail", args=[lived_case.reference])).content.decode()
    assert REFUSAL in page
    # Refused, she may ask again (say, once the arbitration is over).
    assert reverse("privacy:erasure_ask", args=[lived_case.reference]) in page


def test_the_api_asks_lists_and_decides(lived_case: Case, alice: User, hospital: User, union: User) -> None:
    resident = APIClient()
    resident.force_authenticate(alice)
    asked = resident.post(f"/api/v1/cases/{lived_case.reference}/erasure/", {"reason": "请删除"}, format="json")
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    assert resident.get("/api/v1/erasure/").status_code == 403
    assert resident.post(
        f"/api/v1/cases/{lived_case.reference}/erasure/decide/", {"decision": "approve"}, format="json"
    ).status_code == 403

    other = APIClient()
    other.force_authenticate(union)
    assert other.get("/api/v1/erasure/").json() == []
    assert other.post(
        f"/api/v1/cases/{lived_case.reference}/erasure/decide/", {"decision": "approve"}, format="json"
    ).status_code == 404

    coordinator = APIClient()
    coordinator.force_authenticate(hospital)
    assert [r["case"] for r in coordinator.get("/api/v1/erasure/").json()] == [lived_case.reference]
    decided = coordinator.post(
        f"/api/v1/cases/{lived_case.reference}/erasure/decide/", {"decision": "approve"}, format="json"
    )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert Case.objects.get(pk=lived_case.pk).anonymised_at is not None

"""The medical intake page: documents by kind, consent, priorities, asking for a relative, and a
form that comes back with errors without losing a word or a file."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services as core
from consult.errors import CaseError
from consult.models import Case, CaseEvent, DocumentKind, Priority, Professional, Skill, Status, User, Verb
from medical import services
from medical.models import MedicalIntake, UrgentSign
from tests.consult import files_corpus
from tests.medical.conftest import COMPLAINT, body, t

STILL_MISSING = "Still missing: %(list)s. Add them above, or tick this box to send without them."
NO_CONSENT = "Please agree to the use of health information, or we cannot help you online."
NAME_THE_PATIENT = "Please write the name of the person who is ill."
CALL_120 = "If they are still there, call 120 now."
RECEIVED = "Your case has been received. Its reference is %(ref)s."

REPORT = "血常规检查报告.pdf"
XRAY = "胸片.jpg"


def answers(skill: Skill, **overrides: Any) -> dict[str, Any]:
    """What a resident fills in; `None` leaves a field out, as an unticked box is left out."""
    data: dict[str, Any] = {
        "skill": str(skill.pk), "complaint": COMPLAINT, "since_when": "两周", "patient_age": "58",
        "patient_sex": "female", "conditions": "高血压十年", "medicines": "氨氯地平", "allergies": "青霉素",
        "health_consent": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def report() -> SimpleUploadedFile:
    return SimpleUploadedFile(REPORT, files_corpus.pdf(title="血常规"), content_type="application/pdf")


def xray() -> SimpleUploadedFile:
    return SimpleUploadedFile(XRAY, files_corpus.jpeg(seed=11), content_type="image/jpeg")


def intake_url(skill: Skill) -> str:
    return reverse("case_new", args=[skill.code])


def staged_tokens(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="staged" value="([^"]+)">', page)


def assert_text_kept(page: str) -> None:
    """Every word the resident typed is back in the form."""
    assert f">\n{COMPLAINT}</textarea>" in page
    assert 'name="since_when" value="两周"' in page
    assert 'name="patient_age" value="58"' in page
    assert re.search(r'<input type="radio" name="patient_sex" value="female"[^>]* checked', page)
    assert ">\n高血压十年</textarea>" in page
    assert ">\n氨氯地平</textarea>" in page
    assert 'name="allergies" value="青霉素"' in page


def stored_files(root: Any, folder: str) -> list[Any]:
    base = root / folder
    return [p for p in base.rglob("*") if p.is_file()] if base.exists() else []


def test_it_opens_a_lung_complaint_with_its_documents_for_the_respiratory_doctor(
    lung_service: Skill, alice: User, doctor: Professional, cardiologist: Professional,
    login: Callable[..., Client], private_storage: Any,
) -> None:
    client = login(alice)
    page = client.get(intake_url(lung_service))
    assert page.status_code == 200

    sent = client.post(
        intake_url(lung_service),
        answers(lung_service, files_exam_report=report(), files_imaging=xray()),
    )

    case = Case.objects.get(resident=alice)
    assert sent.status_code == 302
    assert sent["Location"] == reverse("case_detail", args=[case.reference])
    # The cardiologist is on duty and idle too: the specialty decides, not the load.
    assert case.assignee_id == doctor.pk
    assert case.status == Status.ASSIGNED
    assert sorted(case.documents.values_list("kind", "original_name")) == [
        (DocumentKind.EXAM_REPORT, REPORT), (DocumentKind.IMAGING, XRAY)
    ]
    intake = MedicalIntake.objects.get(case=case)
    assert (intake.complaint, intake.patient_name, intake.patient_age) == (COMPLAINT, alice.name, 58)
    assert (intake.conditions, intake.medicines, intake.allergies) == ("高血压十年", "氨氯地平", "青霉素")
    # Adopted files leave the staging folder.
    assert stored_files(private_storage, "staging") == []

    shown = body(client.get(sent["Location"]))
    assert t("zh-hans", RECEIVED, ref=case.reference) in shown
    assert COMPLAINT in shown
    assert REPORT in shown and XRAY in shown


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_it_names_the_missing_required_document_and_keeps_the_form_and_the_file(
    language: str, lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client],
    private_storage: Any,
) -> None:
    client = login(alice, language)

    failed = client.post(intake_url(lung_service), answers(lung_service, files_exam_report=report()))

    assert failed.status_code == 200
    assert not Case.objects.exists()
    page = body(failed)
    imaging = t(language, str(DocumentKind.IMAGING.label))
    assert t(language, STILL_MISSING, list=imaging) in page
    assert_text_kept(page)
    # The report sent with the failed attempt is parked, shown, and carried by the page.
    assert f"✓ {REPORT}" in page
    tokens = staged_tokens(page)
    assert len(tokens) == 1
    assert len(stored_files(private_storage, "staging")) == 1

    sent = client.post(
        intake_url(lung_service), answers(lung_service, staged=tokens, files_imaging=xray())
    )

    assert sent.status_code == 302
    case = Case.objects.get(resident=alice)
    assert sorted(case.documents.values_list("kind", "original_name")) == [
        (DocumentKind.EXAM_REPORT, REPORT), (DocumentKind.IMAGING, XRAY)
    ]
    assert stored_files(private_storage, "staging") == []


def test_it_sends_without_the_missing_documents_when_the_resident_says_they_come_later(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    sent = login(alice).post(intake_url(lung_service), answers(lung_service, materials_later="on"))

    assert sent.status_code == 302
    case = Case.objects.get(resident=alice)
    assert not case.documents.exists()


def test_it_asks_for_consent_and_keeps_the_form_and_the_file(
    respiratory: Skill, alice: User, doctor: Professional, login: Callable[..., Client], private_storage: Any
) -> None:
    client = login(alice)

    failed = client.post(
        intake_url(respiratory),
        answers(
            respiratory, health_consent=None, urgent_signs=[UrgentSign.CHEST_PAIN], files_exam_report=report()
        ),
    )

    assert failed.status_code == 200
    assert not Case.objects.exists()
    page = body(failed)
    assert t("zh-hans", NO_CONSENT) in page
    assert_text_kept(page)
    # The ticked sign stays ticked, and the call-120 box stays open.
    assert re.search(r'<input type="checkbox" name="urgent_signs" value="chest_pain"[^>]* checked', page)
    assert re.search(r'id="emergency"\s+role="alert"', page)
    assert f"✓ {REPORT}" in page
    tokens = staged_tokens(page)
    assert len(tokens) == 1

    before = timezone.now()
    sent = client.post(
        intake_url(respiratory), answers(respiratory, staged=tokens, urgent_signs=[UrgentSign.CHEST_PAIN])
    )

    assert sent.status_code == 302
    case = Case.objects.get(resident=alice)
    assert case.priority == Priority.URGENT
    assert list(case.documents.values_list("kind", "original_name")) == [(DocumentKind.EXAM_REPORT, REPORT)]
    intake = MedicalIntake.objects.get(case=case)
    assert before <= intake.health_consent_at <= timezone.now()
    assert stored_files(private_storage, "staging") == []


def test_it_does_not_attach_a_file_parked_by_another_resident(
    respiratory: Skill, alice: User, bob: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    failed = login(bob).post(
        intake_url(respiratory), answers(respiratory, health_consent=None, files_exam_report=report())
    )
    bobs_token = staged_tokens(body(failed))
    assert len(bobs_token) == 1

    sent = login(alice).post(intake_url(respiratory), answers(respiratory, staged=bobs_token))

    assert sent.status_code == 302
    assert not Case.objects.get(resident=alice).documents.exists()


def test_it_refuses_to_open_a_consultation_without_consent(
    respiratory: Skill, alice: User, doctor: Professional
) -> None:
    with pytest.raises(CaseError):
        services.medical_case_submit(
            resident=alice, skill=respiratory, complaint=COMPLAINT, since_when="两周", patient_age=58,
            patient_sex="female", health_consent=False,
        )

    assert not Case.objects.exists()
    assert not MedicalIntake.objects.exists()


def test_it_records_when_consent_was_given(medical_case: Callable[..., Case]) -> None:
    before = timezone.now()

    case = medical_case()

    consent_at = MedicalIntake.objects.get(case=case).health_consent_at
    assert before <= consent_at <= timezone.now()


def test_it_makes_a_case_with_urgent_signs_urgent_and_tells_the_resident_to_call_120(
    respiratory: Skill, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    client = login(alice)

    sent = client.post(
        intake_url(respiratory), answers(respiratory, urgent_signs=[UrgentSign.CHEST_PAIN], materials_later="on")
    )

    case = Case.objects.get(resident=alice)
    assert case.priority == Priority.URGENT
    assert MedicalIntake.objects.get(case=case).urgent_signs == [UrgentSign.CHEST_PAIN]
    page = body(client.get(sent["Location"]))
    assert t("zh-hans", CALL_120) in page
    assert t("zh-hans", str(UrgentSign.CHEST_PAIN.label)) in page
    assert t("zh-hans", str(Priority.URGENT.label)) in page


def test_it_shows_no_call_120_notice_without_urgent_signs(
    medical_case: Callable[..., Case], alice: User, login: Callable[..., Client]
) -> None:
    case = medical_case()

    page = body(login(alice).get(reverse("case_detail", args=[case.reference])))

    assert case.priority == Priority.NORMAL
    assert t("zh-hans", CALL_120) not in page


@pytest.mark.parametrize(
    ("age", "signs", "priority"),
    [
        (64, [], Priority.NORMAL),
        (65, [], Priority.ELDERLY),
        (92, [], Priority.ELDERLY),
        (80, [UrgentSign.BREATHING], Priority.URGENT),
    ],
)
def test_it_makes_a_case_for_a_patient_of_65_or_more_elderly(
    age: int, signs: list[str], priority: Priority, medical_case: Callable[..., Case]
) -> None:
    case = medical_case(patient_age=age, urgent_signs=signs)

    case.refresh_from_db()
    assert case.priority == priority


def test_it_puts_an_elderly_patient_ahead_of_an_earlier_normal_case_in_the_queue(
    medical_case: Callable[..., Case], doctor: Professional, bob: User
) -> None:
    core.professional_set_on_duty(professional=doctor, on_duty=False)
    younger = medical_case(resident=bob, patient_age=40)
    older = medical_case(patient_age=81)
    core.professional_set_on_duty(professional=doctor, on_duty=True)

    taken = core.case_claim_next(professional=doctor)

    assert (younger.status, older.status) == (Status.WAITING, Status.WAITING)
    assert taken is not None and taken.pk == older.pk


def test_it_shows_the_relatives_name_on_the_case_page_when_a_son_asks_for_his_father(
    respiratory: Skill, doctor: Professional, login: Callable[..., Client]
) -> None:
    son = core.resident_signup(phone="13800000077", name="张建国", password="a-Long-test-pass-7")
    client = login(son)

    sent = client.post(
        intake_url(respiratory),
        answers(
            respiratory, on_behalf="on", patient_name="张德福", relationship="儿子", patient_age="92",
            patient_sex="male", materials_later="on",
        ),
    )

    case = Case.objects.get(resident=son)
    intake = MedicalIntake.objects.get(case=case)
    assert (intake.on_behalf, intake.patient_name, intake.relationship, intake.patient_age) == (
        True, "张德福", "儿子", 92
    )
    assert case.priority == Priority.ELDERLY
    for viewer in (son, doctor.user):
        page = body(login(viewer).get(sent["Location"]))
        assert "张德福 · 92" in page
        assert "儿子" in page


def test_it_asks_for_the_patients_name_when_asking_for_a_relative(
    respiratory: Skill, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    failed = login(alice).post(
        intake_url(respiratory), answers(respiratory, on_behalf="on", relationship="女儿", materials_later="on")
    )

    assert failed.status_code == 200
    assert not Case.objects.exists()
    page = body(failed)
    assert t("zh-hans", NAME_THE_PATIENT) in page
    assert 'name="relationship" value="女儿"' in page


def test_it_names_the_account_holder_as_patient_when_not_asking_for_a_relative(
    medical_case: Callable[..., Case], alice: User
) -> None:
    case = medical_case(patient_name="别人", relationship="邻居")

    intake = MedicalIntake.objects.get(case=case)
    assert (intake.on_behalf, intake.patient_name, intake.relationship) == (False, alice.name, "")
    assert CaseEvent.objects.filter(case=case, verb=Verb.SUBMITTED, actor=alice).count() == 1

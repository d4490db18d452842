"""The medical intake page: documents by kind, consent, priorities, asking for a relative, and a
form that comes back with errors without losing a word or a file."""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services as core
from consult.errors import CaseError
from consult.models import Case, CaseEvent, Document, DocumentKind, Priority, Professional, Skill, Status, User, Verb
from medical import services
from medical.models import MedicalIntake, UrgentSign
from privacy.selectors import INITIAL_VERSION
from tests.consult import files_corpus
from tests.medical.conftest import COMPLAINT, body, t
from tests.s3 import answered_within, hung_endpoint, s3_storage

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
        # The hidden field the page carries: the version of the consent text it showed.
        "consent_version": str(INITIAL_VERSION["health"]),
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
    # Back on duty by the flag: through the service both cases would be handed to them at once.
    Professional.objects.filter(pk=doctor.pk).update(on_duty=True)

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


# --- sent once: double clicks, resent forms, a file store that fails ---------------------------

STORE_DOWN = (
    "The file store cannot be reached right now, so your case has not been sent yet. "
    "Your answers and files are kept here: please press Send again in a few minutes."
)


def both_files() -> dict[str, SimpleUploadedFile]:
    return {"files_exam_report": report(), "files_imaging": xray()}


def one_report() -> dict[str, SimpleUploadedFile]:
    return {"files_exam_report": report()}


def form_key(page: str) -> str:
    """The one-time key the intake form carries."""
    (key,) = re.findall(r'<input type="hidden" name="idempotency_key" value="([^"]+)">', page)
    return key


def test_it_opens_one_case_when_the_same_form_is_sent_twice(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client], private_storage: Any
) -> None:
    client = login(alice, "en")
    key = form_key(body(client.get(intake_url(lung_service))))

    first, again = (
        client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, **both_files()))
        for _ in range(2)
    )

    case = Case.objects.get(resident=alice)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("case_detail", args=[case.reference])
    assert case.documents.count() == 2
    assert MedicalIntake.objects.count() == 1
    # The second answer is the first one's, message included: the browser shows only that one.
    assert t("en", RECEIVED, ref=case.reference) in body(client.get(again["Location"]))


def test_it_opens_a_new_case_for_a_new_form(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    # The other half of the test above: it is the key, not the content, that makes a resend.
    client = login(alice, "en")
    for _ in range(2):
        key = form_key(body(client.get(intake_url(lung_service))))
        client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, materials_later="on"))

    assert Case.objects.filter(resident=alice).count() == 2


def test_it_keeps_the_key_of_a_form_shown_again_with_its_errors(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    client = login(alice, "en")
    key = form_key(body(client.get(intake_url(lung_service))))

    failed = client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, health_consent=None))
    sent = client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, materials_later="on"))

    assert failed.status_code == 200
    assert form_key(body(failed)) == key
    # The failed try did not use the key up: the corrected form opens the case.
    assert sent.status_code == 302
    assert Case.objects.filter(resident=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_opens_one_case_when_a_double_click_sends_the_form_twice_at_once(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = form_key(body(login(alice).get(intake_url(lung_service))))
    real_open = services.medical_case_from_form
    # Each request waits (at most 2 s) for the other to reach the same point: without a guard
    # both get there and each opens a case; with one, the second waits for the first's answer.
    both_inside = threading.Barrier(2, timeout=2)

    def open_when_both_are_inside(**kwargs: Any) -> Any:
        try:
            both_inside.wait()
        except threading.BrokenBarrierError:
            pass
        return real_open(**kwargs)

    monkeypatch.setattr(services, "medical_case_from_form", open_when_both_are_inside)
    responses: list[Any] = []

    def click() -> None:
        try:
            data = answers(lung_service, idempotency_key=key, materials_later="on")
            responses.append(login(alice).post(intake_url(lung_service), data))
        finally:
            connection.close()

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=30)

    assert [r.status_code for r in responses] == [302, 302]
    assert Case.objects.filter(resident=alice).count() == 1
    case = Case.objects.get(resident=alice)
    assert {r["Location"] for r in responses} == {reverse("case_detail", args=[case.reference])}


@pytest.fixture
def parked_report(
    lung_service: Skill, alice: User, login: Callable[..., Client], private_storage: Any
) -> tuple[Client, list[str], str]:
    """Alice's intake came back once (imaging missing) with her report parked: the client, the
    parked file's token and the form's key."""
    client = login(alice, "en")
    key = form_key(body(client.get(intake_url(lung_service))))
    first = client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, **one_report()))
    assert first.status_code == 200
    tokens = staged_tokens(body(first))
    assert len(tokens) == 1
    return client, tokens, key


def assert_nothing_opened() -> None:
    assert not Case.objects.exists()
    assert not MedicalIntake.objects.exists()
    assert not CaseEvent.objects.exists()
    assert not Document.objects.exists()


@pytest.mark.parametrize("fault", ["unreachable", "full"])
def test_it_opens_nothing_and_keeps_the_form_and_the_parked_file_when_the_store_fails(
    fault: str, lung_service: Skill, alice: User, doctor: Professional, private_storage: Any,
    parked_report: tuple[Client, list[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, tokens, key = parked_report
    with monkeypatch.context() as outage:
        if fault == "unreachable":  # nothing can be read back
            outage.setattr(FileSystemStorage, "_open", _raise_oserror)
        else:  # the parked file reads, but the case's copy cannot be written
            outage.setattr(FileSystemStorage, "_save", _raise_oserror)

        failed = client.post(
            intake_url(lung_service), answers(lung_service, idempotency_key=key, staged=tokens, materials_later="on")
        )

        assert failed.status_code == 503
        assert_nothing_opened()
        page = body(failed)
        assert t("en", STORE_DOWN) in page
        assert_text_kept(page)
        assert f"✓ {REPORT}" in page
        assert staged_tokens(page) == tokens
        assert len(stored_files(private_storage, "staging")) == 1
        assert stored_files(private_storage, "cases") == []

    # The store is back: the same form, sent again, opens the case with the parked report.
    retry = client.post(
        intake_url(lung_service), answers(lung_service, idempotency_key=key, staged=tokens, materials_later="on")
    )

    assert retry.status_code == 302
    case = Case.objects.get(resident=alice)
    assert list(case.documents.values_list("kind", "original_name")) == [(DocumentKind.EXAM_REPORT, REPORT)]
    assert stored_files(private_storage, "staging") == []


def _raise_oserror(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.EIO, "the file store is not answering")


def test_it_answers_within_seconds_and_opens_nothing_when_the_s3_endpoint_hangs(
    lung_service: Skill, alice: User, doctor: Professional, settings: Any,
    parked_report: tuple[Client, list[str], str],
) -> None:
    client, tokens, key = parked_report
    with hung_endpoint() as endpoint:
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage(endpoint=endpoint, bucket="consult-hung")}

        # botocore's own timeouts would keep this request for minutes; the project's, seconds.
        with answered_within(30):
            failed = client.post(
                intake_url(lung_service),
                answers(lung_service, idempotency_key=key, staged=tokens, materials_later="on"),
            )

    assert failed.status_code == 503
    assert t("en", STORE_DOWN) in body(failed)
    assert staged_tokens(body(failed)) == tokens
    assert_nothing_opened()


@pytest.mark.django_db(transaction=True)
def test_it_calls_the_file_store_outside_every_database_transaction(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client], private_storage: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store call inside a transaction holds its locks (on SQLite, the whole database) for as
    # long as the store takes to answer.
    calls: list[tuple[str, bool]] = []
    for name in ("_open", "_save", "delete", "exists"):
        real = getattr(FileSystemStorage, name)

        def watched(self: Any, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append((_name, connection.in_atomic_block))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(FileSystemStorage, name, watched)
    client = login(alice, "en")
    key = form_key(body(client.get(intake_url(lung_service))))
    first = client.post(intake_url(lung_service), answers(lung_service, idempotency_key=key, **one_report()))

    sent = client.post(
        intake_url(lung_service),
        answers(lung_service, idempotency_key=key, staged=staged_tokens(body(first)), files_imaging=xray()),
    )

    assert sent.status_code == 302
    assert Case.objects.get(resident=alice).documents.count() == 2
    assert {name for name, _inside in calls} >= {"_open", "_save", "delete"}
    assert [call for call in calls if call[1]] == []

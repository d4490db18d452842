"""The consultation summary: the whole journey to the resident's PDF, what the PDF says (and in
which language), that nothing in it is ever fetched, and the public page that proves it genuine."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from consult import files
from consult import services as core
from consult.domains import domain_of
from consult.models import Case, CaseEvent, Document, DocumentKind, Professional, Skill, Status, User, Verb
from consult.pdf import StaticOnlyFetcher, qr_svg, render_pdf
from privacy.selectors import INITIAL_VERSION
from tests.consult import files_corpus
from tests.medical.conftest import ADVICE, COMPLAINT, PATIENT_NAME, body, pdf_text, t, write_note

GENUINE = "This is a genuine document of the Township Consultation Service."
UNCHANGED = "The file you checked is exactly this document: it has not been changed."
CHANGED = "The file you checked is NOT this document: it has been changed, or it is another file."
NOT_OURS = "No document of ours has this code. The paper may not be genuine."
NOT_YET = "The summary can be made once the outcome is written."
HEADINGS = ["Consultation summary", "Patient", "Main complaint", "Advice", "Doctor"]

SLIPPED_IMG = '<img src="file:///etc/passwd">'
# What /etc/passwd starts with on every Linux: must never reach a PDF.
PASSWD_LINE = "root:x:0:0"


def person(request: pytest.FixtureRequest, who: str) -> User:
    someone = request.getfixturevalue(who)
    return someone.user if isinstance(someone, Professional) else someone


def summary_of(case: Case) -> Document:
    return Document.objects.get(case=case, kind=DocumentKind.SUMMARY)


def stored_bytes(document: Document) -> bytes:
    with files.open_stored(document.storage_key) as handle:
        data = handle.read()
    assert isinstance(data, bytes)
    return data


def download(client: Client, document: Document) -> Any:
    return client.get(reverse("document_download", args=[document.case.reference, document.pk]), {"download": "1"})


def render_summary(case: Case, fetcher: StaticOnlyFetcher) -> bytes:
    """The case's summary as `summary_generate` renders it, with a fetcher we can inspect."""
    domain = domain_of(case)
    assert domain is not None
    with translation.override(case.resident.language):
        template, context = domain.summary(case)
        context.update(
            case=case, verify_url="https://example.invalid/verify/x/", qr=qr_svg("https://example.invalid/"),
            generated_at=timezone.now(), documents=case.documents.exclude(kind=DocumentKind.SUMMARY),
        )
        return render_pdf(template, context, fetcher=fetcher)


# --- the journey ------------------------------------------------------------------------------


def test_it_takes_a_lung_complaint_from_intake_to_the_pdf_the_resident_downloads(
    lung_service: Skill, alice: User, bob: User, doctor: Professional, other_doctor: Professional,
    lawyer: Professional, cardiologist: Professional, login: Callable[..., Client],
) -> None:
    resident, physician = login(alice), login(doctor.user)

    # Intake with an exam report and an X-ray photo.
    opened = resident.post(
        reverse("case_new", args=[lung_service.code]),
        {
            "skill": str(lung_service.pk), "complaint": COMPLAINT, "since_when": "两周", "patient_age": "58",
            "patient_sex": "female", "health_consent": "on",
            "consent_version": str(INITIAL_VERSION["health"]),
            "files_exam_report": SimpleUploadedFile("血常规.pdf", files_corpus.pdf(), content_type="application/pdf"),
            "files_imaging": SimpleUploadedFile("胸片.jpg", files_corpus.jpeg(seed=21), content_type="image/jpeg"),
        },
    )
    case = Case.objects.get(resident=alice)
    assert opened["Location"] == reverse("case_detail", args=[case.reference])
    assert case.assignee_id == doctor.pk  # the respiratory doctor, not the idle cardiologist

    # The doctor accepts, writes the note, resolves and closes.
    def act(action: str) -> None:
        physician.post(reverse("case_action", args=[case.reference, action]))

    act("accept")
    physician.post(
        reverse("medical:note_edit", args=[case.reference]),
        {"findings": "胸片未见明显异常。", "impression": "急性支气管炎。", "advice": ADVICE, "urgency": "routine"},
    )
    act("resolve")
    act("close")
    case.refresh_from_db()
    assert case.status == Status.CLOSED

    # The resident finds the summary on the case page and downloads it.
    summary = summary_of(case)
    download_url = reverse("document_download", args=[case.reference, summary.pk])
    page = body(resident.get(reverse("case_detail", args=[case.reference])))
    assert f'href="{download_url}?download=1"' in page
    response = resident.get(download_url, {"download": "1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert isinstance(response, FileResponse)
    text = pdf_text(b"".join(response.streaming_content))
    assert PATIENT_NAME in text
    assert ADVICE in text
    assert COMPLAINT in text
    assert "血常规.pdf" in text and "胸片.jpg" in text

    # Nobody else gets it.
    for outsider in (bob, other_doctor.user, lawyer.user):
        assert login(outsider).get(download_url, {"download": "1"}).status_code == 404


# --- what the PDF says ------------------------------------------------------------------------


def test_it_stores_the_summary_on_close_as_a_summary_document_with_a_verification_code(
    closed_case: Case, doctor: Professional
) -> None:
    summary = summary_of(closed_case)

    assert summary.verification_code
    assert summary.content_type == "application/pdf"
    assert summary.original_name == f"{t('zh-hans', 'Consultation summary')} {closed_case.reference}.pdf"
    assert CaseEvent.objects.filter(case=closed_case, verb=Verb.SUMMARY_GENERATED, actor=doctor.user).count() == 1
    text = pdf_text(stored_bytes(summary))
    assert PATIENT_NAME in text
    assert ADVICE in text


def test_it_prints_markup_in_the_case_literally_and_fetches_nothing(
    medical_case: Callable[..., Case], doctor: Professional
) -> None:
    case = core.case_accept(
        case=medical_case(
            complaint=f"咳嗽 {SLIPPED_IMG} <b>粗体</b> <script>alert(1)</script> 父亲 & 母亲 x<y",
            conditions="<b>高血压</b>",
        ),
        professional=doctor,
    )
    write_note(case, doctor, advice=f"{ADVICE} {SLIPPED_IMG} & <b>按时</b>")
    fetcher = StaticOnlyFetcher()

    text = pdf_text(render_summary(case, fetcher))

    assert SLIPPED_IMG in text
    assert "<b>粗体</b>" in text
    assert "<script>alert(1)</script>" in text
    assert "父亲 & 母亲 x<y" in text
    assert f"{ADVICE} {SLIPPED_IMG} & <b>按时</b>" in text
    assert PASSWD_LINE not in text
    # Escaped markup is text: not even an attempt to fetch.
    assert fetcher.refused == []


def test_it_refuses_to_fetch_anything_but_static_files_for_markup_that_slips_through(
    settings: Any, tmp_path: Any, closed_case: Case
) -> None:
    # A template that forgets to escape, as a future edit might: the fetcher is the second wall.
    (tmp_path / "slipped.html").write_text(
        '{% extends "pdf/base.html" %}{% block body %}<p>{{ value|safe }}</p>'
        '<img src="https://example.com/tracker.png"><img src="/static/missing.png">{% endblock %}'
    )
    engine: dict[str, Any] = django_settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path, *engine["DIRS"]]}]
    fetcher = StaticOnlyFetcher()

    data = render_pdf(
        "slipped.html",
        {
            "case": closed_case, "value": f"前{SLIPPED_IMG}后", "qr": qr_svg("x"), "verify_url": "x",
            "generated_at": timezone.now(),
        },
        fetcher=fetcher,
    )

    text = pdf_text(data)
    assert "前" in text and "后" in text
    assert PASSWD_LINE not in text
    assert "file:///etc/passwd" in fetcher.refused
    assert "https://example.com/tracker.png" in fetcher.refused
    assert "https://pdf.invalid/static/missing.png" in fetcher.refused


def test_it_names_the_relative_as_patient_and_the_son_as_who_asked(
    medical_case: Callable[..., Case], doctor: Professional, login: Callable[..., Client]
) -> None:
    son = core.resident_signup(phone="13800000077", name="张建国", password="a-Long-test-pass-7")
    case = medical_case(
        resident=son, on_behalf=True, relationship="儿子", patient_name="张德福", patient_age=92,
        patient_sex="male",
    )
    core.case_accept(case=case, professional=doctor)
    write_note(case, doctor)

    summary = core.summary_generate(case=case, actor=son)

    text = pdf_text(stored_bytes(summary))
    assert "张德福" in text
    assert "92 · " in text
    assert "张建国 (儿子)" in text
    page = body(login(son).get(reverse("case_detail", args=[case.reference])))
    assert "张德福 · 92" in page


@pytest.mark.parametrize(("language", "other"), [("en", "zh-hans"), ("zh-hans", "en")])
def test_it_writes_the_summary_in_the_residents_language_whoever_closes_the_case(
    language: str, other: str, noted_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    alice.language = language
    alice.save(update_fields=["language"])
    physician = login(doctor.user, other)

    physician.post(reverse("case_action", args=[noted_case.reference, "resolve"]))
    physician.post(reverse("case_action", args=[noted_case.reference, "close"]))

    summary = summary_of(noted_case)
    text = pdf_text(stored_bytes(summary))
    for heading in HEADINGS:
        assert t(language, heading) in text
    assert t(other, "Consultation summary") not in text
    assert ("Respiratory medicine" if language == "en" else "呼吸科") in text
    assert summary.original_name.startswith(t(language, "Consultation summary"))


def test_it_has_chinese_for_the_summary_headings() -> None:
    # Otherwise the language test above would pass with English headings in a Chinese PDF.
    assert [m for m in HEADINGS if t("zh-hans", m) == m] == []


# --- summary on request -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "doctor", "coordinator"])
def test_it_makes_the_summary_on_request_for_anyone_on_the_case_once_the_note_exists(
    who: str, request: pytest.FixtureRequest, noted_case: Case, login: Callable[..., Client]
) -> None:
    user = person(request, who)

    made = login(user).post(reverse("summary_request", args=[noted_case.reference]))

    assert made["Location"] == reverse("case_detail", args=[noted_case.reference])
    summary = summary_of(noted_case)
    assert summary.verification_code
    assert CaseEvent.objects.filter(case=noted_case, verb=Verb.SUMMARY_GENERATED, actor=user).exists()
    assert ADVICE in pdf_text(stored_bytes(summary))


def test_it_refuses_the_summary_before_the_note_is_written(
    active_case: Case, alice: User, login: Callable[..., Client]
) -> None:
    refused = login(alice).post(reverse("summary_request", args=[active_case.reference]), follow=True)

    assert not Document.objects.filter(kind=DocumentKind.SUMMARY).exists()
    assert t("zh-hans", NOT_YET) in body(refused)


@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer"])
def test_it_answers_404_to_outsiders_asking_for_the_summary(
    who: str, request: pytest.FixtureRequest, noted_case: Case, login: Callable[..., Client]
) -> None:
    response = login(person(request, who)).post(reverse("summary_request", args=[noted_case.reference]))

    assert response.status_code == 404
    assert not Document.objects.filter(kind=DocumentKind.SUMMARY).exists()


# --- the public verification page -------------------------------------------------------------


def test_it_confirms_a_summary_publicly_without_showing_medical_content(
    closed_case: Case, login: Callable[..., Client]
) -> None:
    summary = summary_of(closed_case)

    page = login(None).get(reverse("verify_document", args=[summary.verification_code]))

    assert page.status_code == 200
    shown = body(page)
    assert t("zh-hans", GENUINE) in shown
    assert closed_case.reference in shown
    assert summary.sha256 in shown
    for secret in (COMPLAINT, ADVICE, PATIENT_NAME, "急性支气管炎", "胸片未见明显异常", "两周"):
        assert secret not in shown


def test_it_says_whether_a_pdf_is_exactly_the_summary_or_changed(
    closed_case: Case, login: Callable[..., Client]
) -> None:
    summary = summary_of(closed_case)
    url = reverse("verify_document", args=[summary.verification_code])
    original = stored_bytes(summary)
    modified = original.replace(b"%%EOF", b"% edited\n%%EOF")
    assert modified != original
    client = login(None)

    same = body(client.post(url, {"file": SimpleUploadedFile("s.pdf", original, content_type="application/pdf")}))
    changed = body(client.post(url, {"file": SimpleUploadedFile("s.pdf", modified, content_type="application/pdf")}))

    assert t("zh-hans", UNCHANGED) in same
    assert t("zh-hans", CHANGED) not in same
    assert t("zh-hans", CHANGED) in changed
    assert t("zh-hans", UNCHANGED) not in changed


def test_it_answers_404_for_an_unknown_verification_code(closed_case: Case, login: Callable[..., Client]) -> None:
    code = summary_of(closed_case).verification_code
    assert code is not None
    unknown = re.sub(r"^.", lambda m: "B" if m.group(0) == "A" else "A", code)

    page = login(None).get(reverse("verify_document", args=[unknown]))

    assert page.status_code == 404
    assert t("zh-hans", NOT_OURS) in body(page)
    assert closed_case.reference not in body(page)

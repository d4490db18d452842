"""Medical cases at each stage, and the helpers to read what a person would see: pages and PDFs.

Project strings are compared with what gettext gives for the page language, so a Chinese page is
checked against the Chinese catalogue; Chinese asserted literally comes from data (names).
"""

from __future__ import annotations

import html
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import translation

from consult import services as core
from consult.models import Case, DocumentKind, Professional, Skill, Status, User
from medical import services
from medical.models import ConsultationNote

PATIENT_NAME = "王秀英"
COMPLAINT = "咳嗽两周，夜里加重，有点发烧。"
ADVICE = "多喝温水，按时服药，一周后复查胸片。"


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Any) -> Any:
    """An empty private folder per test: intake files, uploads and summaries land here."""
    root = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def t(language: str, message: str, **params: Any) -> str:
    """A project string as the page in `language` shows it."""
    with translation.override(language):
        text = translation.gettext(message)
    return text % params if params else text


def body(response: Any) -> str:
    return html.unescape(response.content.decode())


def pdf_text(data: bytes) -> str:
    """What a reader (or a screen reader) gets out of the PDF, with whitespace runs made one space."""
    assert data.startswith(b"%PDF-")
    result = subprocess.run(
        ["/usr/bin/pdftotext", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=True, timeout=30
    )
    return " ".join(result.stdout.decode().split())


@pytest.fixture
def lung_service(respiratory: Skill) -> Skill:
    """Respiratory medicine, which asks for an exam report and imaging at intake."""
    respiratory.required_documents = [DocumentKind.EXAM_REPORT, DocumentKind.IMAGING]
    respiratory.save(update_fields=["required_documents"])
    return respiratory


@pytest.fixture
def cardiologist(professional_factory: Callable[..., Professional], cardiology: Skill) -> Professional:
    """On duty and idle: a lung complaint must still not go to them."""
    return professional_factory([cardiology], name="刘心")


@pytest.fixture
def medical_case(
    alice: User, respiratory: Skill, doctor: Professional, other_doctor: Professional, lawyer: Professional
) -> Callable[..., Case]:
    """Open a medical case for `resident` (alice) through the service; it is assigned to `doctor`."""

    def make(resident: User | None = None, **fields: Any) -> Case:
        values: dict[str, Any] = dict(
            resident=resident or alice, skill=respiratory, complaint=COMPLAINT, since_when="两周",
            patient_age=58, patient_sex="female", health_consent=True,
        )
        values.update(fields)
        case, problems = services.medical_case_submit(**values)
        assert problems == []
        return case

    return make


@pytest.fixture
def active_case(medical_case: Callable[..., Case], doctor: Professional) -> Case:
    """Alice's case, accepted by the doctor: ready for a note."""
    case = medical_case()
    assert case.assignee_id == doctor.pk
    return core.case_accept(case=case, professional=doctor)


def write_note(case: Case, doctor: Professional, **fields: Any) -> ConsultationNote:
    values: dict[str, Any] = dict(findings="胸片未见明显异常。", impression="急性支气管炎。", advice=ADVICE)
    values.update(fields)
    return services.note_save(case=case, professional=doctor, **values)


@pytest.fixture
def noted_case(active_case: Case, doctor: Professional) -> Case:
    write_note(active_case, doctor)
    return active_case


@pytest.fixture
def closed_case(noted_case: Case, doctor: Professional) -> Case:
    """Resolved and closed by the doctor: the summary is generated on close."""
    core.case_resolve(case=noted_case, professional=doctor)
    case = core.case_close(case=noted_case, user=doctor.user)
    assert case.status == Status.CLOSED
    return case

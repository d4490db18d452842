"""The privacy tests' cast comes from tests/conftest.py; here, the private folder and the intakes."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone, translation

from consult import services
from consult.models import Case, DocumentKind, Professional, Skill, Status, User
from consult.services.messages import message_post
from medical import services as medical_services
from tests.consult import files_corpus
from tests.legal.conftest import hangzhou  # noqa: F401 - the fixture: Hangzhou's rates for the legal intake
from tests.medical.conftest import COMPLAINT


@pytest.fixture(autouse=True)
def private_files(settings: Any, tmp_path: Path) -> Path:
    """Real files on disk, one empty folder per test: what is deleted can be looked for."""
    root = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


def t(language: str, message: str, **params: Any) -> str:
    with translation.override(language):
        text = translation.gettext(message)
    return text % params if params else text


def medical_answers(skill: Skill, version: int | str | None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "skill": str(skill.pk), "complaint": COMPLAINT, "since_when": "两周", "patient_age": "58",
        "patient_sex": "female", "health_consent": "on", "materials_later": "on", "consent_version": version,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def lived_case(
    alice: User, respiratory: Skill, doctor: Professional, other_doctor: Professional, lawyer: Professional,
    private_files: Path,
) -> Case:
    """Alice's consultation with everything a case gathers: an intake naming her father, an exam
    report, chat both ways, a home visit, the doctor's note, the summary; then closed."""
    case, _ = medical_services.medical_case_submit(
        resident=alice, skill=respiratory, complaint=COMPLAINT, since_when="两周", patient_age=88,
        patient_sex="male", health_consent=True, on_behalf=True, relationship="女儿", patient_name="王老汉",
        conditions="高血压十年", medicines="氨氯地平", allergies="青霉素",
    )
    services.document_add(
        case=case, uploader=alice, upload=io.BytesIO(files_corpus.pdf(title="血常规")), name="王老汉血常规.pdf",
        kind=DocumentKind.EXAM_REPORT,
    )
    services.case_accept(case=case, professional=doctor)
    message_post(case=case, sender=alice, body="我父亲王老汉晚上咳得厉害。")
    message_post(case=case, sender=doctor.user, body="请明天去拍胸片。")
    medical_services.home_visit_request(
        case=case, resident=alice, address="杭州市某村12号", preferred_dates="周末上午"
    )
    medical_services.note_save(
        case=case, professional=doctor, findings="胸片未见明显异常。", impression="急性支气管炎。",
        advice="多喝水，按时服药。",
    )
    services.case_resolve(case=case, professional=doctor)
    return services.case_close(case=case, user=doctor.user)


def age(case: Case, days: int) -> Case:
    """The case as if it had ended `days` ago."""
    when = timezone.now() - timedelta(days=days)
    field = "closed_at" if case.status == Status.CLOSED else "withdrawn_at"
    Case.objects.filter(pk=case.pk).update(**{field: when})
    return Case.objects.get(pk=case.pk)

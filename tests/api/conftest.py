"""The API's cast: real tokens from POST /api/v1/auth/token/, clients for each role, a legal case
beside the medical `case`, and a picture of everything a request could change.

Throttles count in the default cache, which outlives a test (and is Redis in the services pass):
it is emptied around every test here, so no test inherits another's login count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from consult import services
from consult.models import (
    Case,
    CaseEvent,
    Document,
    IdempotencyKey,
    Message,
    Priority,
    Professional,
    Rating,
    Role,
    Skill,
    User,
)
from legal import services as legal_services
from legal.models import CityRates, LegalIntake, MediationOutcome
from medical import services as medical_services
from medical.models import ConsultationNote, MedicalIntake
from privacy.selectors import INITIAL_VERSION
from tests.conftest import PASSWORD, second_factor_fields

API = "/api/v1/"
ROLES = ("owner", "other_resident", "assignee", "other_professional", "other_kind", "coordinator", "anonymous")


@pytest.fixture(autouse=True)
def fresh_throttles() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> Path:
    """Uploads and summaries of one test go to a private folder of its own."""
    location = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": location, "base_url": None},
        },
    }
    return location


@pytest.fixture
def hangzhou(db: Any) -> CityRates:
    """The legal intake offers only cities with rates."""
    return CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )


@pytest.fixture
def other_lawyer(professional_factory: Callable[..., Professional], sick_pay: Skill) -> Professional:
    """A sick-pay lawyer not on the legal case (off duty, so matching skips them)."""
    return professional_factory([sick_pay], role=Role.LAWYER, name="孙律师", on_duty=False)


@pytest.fixture
def legal_case(
    alice: User, sick_pay: Skill, lawyer: Professional, other_lawyer: Professional, hangzhou: CityRates
) -> Case:
    """Alice's sick-pay dispute, assigned to `lawyer` on submit."""
    case, problems = legal_services.legal_case_submit(
        resident=alice, skill=sick_pay, share_consent=True, **LEGAL_FIELDS
    )
    assert problems == []
    assert case.assignee_id == lawyer.pk
    return case


LEGAL_FIELDS: dict[str, Any] = {
    "job_title": "纺织厂挡车工",
    "employment_start": date(2019, 3, 1),
    "employer_name": "杭州某纺织有限公司",
    "what_happened": "病假20天，公司只发了802元。",
    "city": "杭州",
    "monthly_wage": Decimal("4000"),
    "amount_received": Decimal("802"),
    "amount_claimed": Decimal("1400"),
    "desired_outcome": "补发病假工资差额。",
}

MEDICAL_BODY: dict[str, Any] = {
    "skill": "respiratory",
    "complaint": "咳嗽两周，夜里加重。",
    "since_when": "两周",
    "patient_age": 58,
    "patient_sex": "female",
    "health_consent": True,
    # The text an app fetched from consents/health/ and showed.
    "consent_version": INITIAL_VERSION["health"],
}

LEGAL_BODY: dict[str, Any] = {
    "skill": "sick-pay",
    "job_title": "纺织厂挡车工",
    "employment_start": "2019-03-01",
    "employer_name": "杭州某纺织有限公司",
    "what_happened": "病假20天，公司只发了802元。",
    "city": "杭州",
    "monthly_wage": "4000",
    "amount_received": "802",
    "amount_claimed": "1400",
    "desired_outcome": "补发病假工资差额。",
    "share_consent": True,
    "consent_version": INITIAL_VERSION["share_employer"],
}

NOTE_BODY: dict[str, Any] = {
    "findings": "胸片未见明显异常。",
    "impression": "急性支气管炎。",
    "advice": "多喝温水，按时服药，一周后复查胸片。",
    "urgency": "routine",
}


def token_for(user: User, client: APIClient | None = None) -> str:
    """A real token, the way an app gets one."""
    credentials = {"phone": user.phone, "password": PASSWORD, **second_factor_fields(user)}
    response = (client or APIClient()).post(f"{API}auth/token/", credentials, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def token_client(token: str | None, language: str = "en") -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE=language)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def api() -> Callable[..., APIClient]:
    """`api(user)`: a client carrying a freshly issued token for `user` (None: anonymous)."""

    def make(user: User | None, language: str = "en") -> APIClient:
        return token_client(token_for(user) if user is not None else None, language)

    return make


@dataclass(frozen=True)
class Cast:
    """Who is who around one case. `other_kind` is a professional of the other domain."""

    owner: User
    other_resident: User
    assignee: User
    other_professional: User
    other_kind: User
    coordinator: User

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)


@pytest.fixture
def medical_cast(
    case: Case, alice: User, bob: User, doctor: Professional, other_doctor: Professional, lawyer: Professional,
    coordinator: User,
) -> Cast:
    return Cast(alice, bob, doctor.user, other_doctor.user, lawyer.user, coordinator)


@pytest.fixture
def legal_cast(
    legal_case: Case, alice: User, bob: User, lawyer: Professional, other_lawyer: Professional, doctor: Professional,
    coordinator: User,
) -> Cast:
    return Cast(alice, bob, lawyer.user, other_lawyer.user, doctor.user, coordinator)


def write_note(case: Case, doctor: Professional) -> ConsultationNote:
    return medical_services.note_save(case=case, professional=doctor, **NOTE_BODY)


def submit_plain(resident: User, skill: Skill) -> Case:
    return services.case_submit(resident=resident, skill=skill, description="胸闷。", priority=Priority.NORMAL)


def snapshot() -> dict[str, Any]:
    """Everything an API request could write. Equal before and after: nothing changed."""
    return {
        "cases": sorted(Case.objects.values_list("reference", "status", "assignee_id")),
        "events": sorted(CaseEvent.objects.values_list("pk", flat=True)),
        "documents": sorted(Document.objects.values_list("pk", "case_id", "sha256")),
        "messages": sorted(Message.objects.values_list("pk", "case_id", "seq")),
        "notes": sorted(ConsultationNote.objects.values_list("case_id", "version")),
        "outcomes": sorted(MediationOutcome.objects.values_list("case_id", "result", "recorded_at")),
        "intakes": (MedicalIntake.objects.count(), LegalIntake.objects.count()),
        "ratings": sorted(Rating.objects.values_list("case_id", "score")),
        "on_duty": sorted(Professional.objects.values_list("pk", "on_duty")),
        "tokens": sorted(AuthToken.objects.values_list("digest", flat=True)),
        "idempotency": sorted(IdempotencyKey.objects.values_list("user_id", "key")),
    }


def assert_error_shape(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error body: {"error": {"code", "message", "fields"}} and nothing else."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in error["fields"].values())
    if code is not None:
        assert error["code"] == code, error
    return dict(error)

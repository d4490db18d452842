"""The labour-dispute cast: Hangzhou's rates, the union's legal-aid fund, the lawyer's profile, and
helpers to open and work a sick-pay case the way the pages do."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import services
from consult.models import Case, Kind, Professional, Role, Skill, User
from legal.models import CityRates, LawyerProfile, LegalAidFund
from privacy.selectors import INITIAL_VERSION
from tests.consult import files_corpus as corpus

EMPLOYER = "杭州某纺织有限公司"


@pytest.fixture(autouse=True)
def private_files(settings: Any, tmp_path: Path) -> Path:
    """Uploads and summaries of one test go to a folder of its own."""
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
    """Hangzhou's figures as the admin stores them (read back, so amounts carry their 2 places)."""
    rates = CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    return CityRates.objects.get(pk=rates.pk)


@pytest.fixture
def fund(db: Any) -> LegalAidFund:
    return LegalAidFund.objects.create(name="市总工会法律援助基金", hourly_rate=Decimal("200"))


@pytest.fixture
def sick_pay(skill_factory: Callable[..., Skill]) -> Skill:
    """The sick-pay service, asking for a payslip and a sick-leave note at intake."""
    return skill_factory(
        kind=Kind.LEGAL, code="sick-pay", name_zh="病假工资", name_en="Sick pay",
        required_documents=["payslip", "sick_leave"],
    )


@pytest.fixture
def lawyer_profile(lawyer: Professional) -> LawyerProfile:
    return LawyerProfile.objects.create(professional=lawyer, union="市总工会法律服务中心", firm="浙江明理律师事务所")


@pytest.fixture
def other_lawyer(professional_factory: Callable[..., Professional], sick_pay: Skill) -> Professional:
    """A sick-pay lawyer who is not on the case (off duty, so matching skips them)."""
    return professional_factory([sick_pay], role=Role.LAWYER, name="孙律师", on_duty=False)


def intake_post(skill: Skill, **overrides: Any) -> dict[str, Any]:
    """The seeded dispute: 20 days of sick leave on a 4000 yuan wage, 802 yuan paid."""
    data: dict[str, Any] = {
        "skill": str(skill.pk),
        "job_title": "纺织厂挡车工",
        "employment_start": "2019-03-01",
        "employment_end": "",
        "employer_name": EMPLOYER,
        "employer_address": "杭州市萧山区某工业园",
        "employer_contact": "人事部 刘经理",
        "employer_phone": "0571-82000000",
        "what_happened": "病假20天，公司只发了802元，低于法定标准。",
        "city": "杭州",
        "monthly_wage": "4000",
        "amount_received": "802",
        "amount_claimed": "1400",
        "sick_days": "20",
        "desired_outcome": "补发病假工资差额。",
        "share_consent": "on",
        # The hidden field the page carries: the version of the consent text it showed.
        "consent_version": str(INITIAL_VERSION["share_employer"]),
        "files_payslip": [payslip()],
        "files_sick_leave": [sick_note()],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def payslip() -> SimpleUploadedFile:
    return SimpleUploadedFile("工资条.pdf", corpus.pdf(title="Payslip"), content_type="application/pdf")


def sick_note() -> SimpleUploadedFile:
    return SimpleUploadedFile("病假证明.jpg", corpus.jpeg(seed=11), content_type="image/jpeg")


def intake_url(skill: Skill) -> str:
    return reverse("case_new", args=[skill.code])


def body(response: Any) -> str:
    return html.unescape(response.content.decode())


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def en(message: str, **params: Any) -> str:
    with translation.override("en"):
        text = translation.gettext(message)
    return text % params if params else text


def staged_tokens(response: Any) -> list[str]:
    return re.findall(r'name="staged" value="([^"]+)"', response.content.decode())


@pytest.fixture
def open_case(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> Callable[..., Case]:
    """Alice opens the seeded sick-pay dispute through the intake page; it goes to `lawyer`."""

    def make(**overrides: Any) -> Case:
        response = login(alice).post(intake_url(sick_pay), intake_post(sick_pay, **overrides))
        assert response.status_code == 302, body(response)
        return Case.objects.get(reference=response["Location"].rstrip("/").rsplit("/", 1)[1])

    return make


@pytest.fixture
def active_case(open_case: Callable[..., Case], lawyer: Professional) -> Case:
    """The seeded dispute, accepted by its lawyer."""
    case = open_case()
    return services.case_accept(case=case, professional=lawyer)

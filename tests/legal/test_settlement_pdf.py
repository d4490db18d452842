"""The whole dispute, page by page, ending with the mediation record the worker downloads; and what
that PDF must show and must not break on. The PDF is read back as text with pdftotext."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult.models import Case, Document, DocumentKind, Professional, Skill, Status, User
from legal.models import CityRates, ClaimEstimate, LawyerProfile, LegalAidFund, MediationOutcome
from legal.views import capitals
from tests.legal.conftest import EMPLOYER, intake_post, intake_url, staged_tokens

PDFTOTEXT = "/usr/bin/pdftotext"


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    done = subprocess.run(
        [PDFTOTEXT, "-layout", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode()


def gettext_in(language: str, message: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


def download(client: Client, case: Case, document: Document) -> Any:
    return client.get(reverse("document_download", args=[case.reference, document.pk]))


def signature_row(text: str, language: str) -> re.Pattern[str]:
    """One line holding the three signature labels in order: the row under the signature lines
    (in the table above, each label starts a line of its own)."""
    labels = [re.escape(gettext_in(language, label)) for label in ("Worker", "Employer", "Mediator")]
    return re.compile(r"^\s*" + r"\s{2,}".join(labels) + r"\s*$", re.MULTILINE)


def test_it_takes_a_dispute_from_intake_to_the_settlement_record_the_worker_downloads(
    alice: User, bob: User, doctor: Professional, other_lawyer: Professional, sick_pay: Skill,
    lawyer: Professional, lawyer_profile: LawyerProfile, hangzhou: CityRates, fund: LegalAidFund,
    login: Callable[..., Client],
) -> None:
    worker = login(alice)
    mediator = login(lawyer.user)

    # The worker sends her dispute with a payslip; the sick-leave note follows later.
    assert worker.get(intake_url(sick_pay)).status_code == 200
    first = worker.post(intake_url(sick_pay), intake_post(sick_pay, files_sick_leave=None))
    sent = worker.post(
        intake_url(sick_pay),
        intake_post(
            sick_pay, files_payslip=None, files_sick_leave=None, staged=staged_tokens(first), materials_later="on"
        ),
    )
    case = Case.objects.get()
    assert sent["Location"] == reverse("case_detail", args=[case.reference])
    assert list(case.documents.values_list("kind", flat=True)) == [DocumentKind.PAYSLIP]
    owed = ClaimEstimate.objects.get(case=case).owed
    assert owed == Decimal("1404.80")

    # Matched to the on-duty sick-pay lawyer, who accepts and mediates.
    assert case.assignee == lawyer
    mediator.post(reverse("case_action", args=[case.reference, "accept"]))

    def record(what: str, **data: str) -> None:
        response = mediator.post(reverse("legal:record", args=[case.reference, what]), data)
        assert response.status_code == 302

    record("contact", day="2024-05-06", channel="phone", result="人事部同意面谈。")
    record("contact", day="2024-05-08", channel="visit", result="到公司递交调解申请。")
    record("session", day="2024-05-13", mode="in_person", attendees="王秀英、刘经理、张律师", notes="同意补发。")
    record("hours", day="2024-05-13", hours="2")
    record("outcome", result="settled", amount_agreed=str(owed), payment_due="2024-05-31", terms="一次性付清。")
    record("payment", amount=str(owed), day="2024-05-28")
    mediator.post(reverse("case_action", args=[case.reference, "resolve"]))
    mediator.post(reverse("case_action", args=[case.reference, "close"]))

    case.refresh_from_db()
    assert case.status == Status.CLOSED
    outcome = MediationOutcome.objects.get(case=case)
    assert (outcome.amount_agreed, outcome.amount_received) == (owed, owed)
    assert case.employer_contacts.count() == 2

    # The worker finds the record on her case page and downloads it.
    summary = case.documents.get(kind=DocumentKind.SUMMARY)
    page = worker.get(reverse("case_detail", args=[case.reference])).content.decode()
    assert reverse("document_download", args=[case.reference, summary.pk]) in page
    response = download(worker, case, summary)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(b"".join(response.streaming_content))

    assert EMPLOYER in text
    assert "王秀英" in text and "张律师" in text and "市总工会法律服务中心" in text
    assert "1404.80" in text
    # Agreed and received, each in figures and in capitals (大写).
    assert text.count("壹仟肆佰零肆元捌角") == 2
    assert case.reference in text
    assert signature_row(text, alice.language).search(text), text

    # Nobody else gets it.
    for outsider in (bob, doctor.user, other_lawyer.user):
        assert download(login(outsider), case, summary).status_code == 404
    anonymous = download(login(None), case, summary)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login") + "?next=")


@pytest.fixture
def settled_case(
    open_case: Callable[..., Case], lawyer: Professional, login: Callable[..., Client]
) -> Callable[..., Case]:
    """A dispute whose lawyer recorded a settlement of 1404.80."""

    def make(**overrides: Any) -> Case:
        case = open_case(**overrides)
        client = login(lawyer.user)
        client.post(reverse("case_action", args=[case.reference, "accept"]))
        client.post(
            reverse("legal:record", args=[case.reference, "outcome"]),
            {"result": "settled", "amount_agreed": "1404.80", "payment_due": "2024-05-31"},
        )
        return case

    return make


def _summary_text(case: Case, client: Client) -> str:
    response = client.post(reverse("summary_request", args=[case.reference]))
    assert response.status_code == 302
    summary = case.documents.get(kind=DocumentKind.SUMMARY)
    return pdf_text(b"".join(download(client, case, summary).streaming_content))


def test_it_prints_markup_in_the_employers_name_as_plain_text(
    settled_case: Callable[..., Case], lawyer: Professional, login: Callable[..., Client]
) -> None:
    case = settled_case(employer_name="<b>甲&乙</b>厂", what_happened="说好的x<y & 病假工资没发。")

    text = _summary_text(case, login(lawyer.user))

    assert "<b>甲&乙</b>厂" in text
    assert "说好的x<y & 病假工资没发。" in text
    assert "&amp;" not in text and "&lt;" not in text


def test_it_prints_the_record_in_the_workers_language_with_signature_lines(
    settled_case: Callable[..., Case], alice: User, lawyer: Professional, login: Callable[..., Client]
) -> None:
    alice.language = "en"
    alice.save()
    case = settled_case()

    text = _summary_text(case, login(lawyer.user))

    assert "Labour dispute mediation record" in text
    assert re.search(r"^\s*Worker\s{2,}Employer\s{2,}Mediator\s*$", text, re.MULTILINE), text
    assert "1404.80 yuan (in capitals: 壹仟肆佰零肆元捌角)" in text
    # Nothing received yet: zero, in capitals too.
    assert "0.00 yuan (in capitals: 零元整)" in text


@pytest.mark.parametrize(
    ("amount", "written"),
    [
        (Decimal("1404.80"), "壹仟肆佰零肆元捌角"),
        (Decimal("802"), "捌佰零贰元整"),
        (Decimal("2206.8"), "贰仟贰佰零陆元捌角"),
        (Decimal("1000000.05"), "壹佰万元零伍分"),
        (Decimal("0"), "零元整"),
    ],
)
def test_it_writes_amounts_in_chinese_capital_numerals(amount: Decimal, written: str) -> None:
    assert capitals(amount) == written


def test_it_keeps_the_signature_lines_on_the_page_of_the_agreement(
    settled_case: Callable[..., Case], alice: User, lawyer: Professional, login: Callable[..., Client]
) -> None:
    # A page holding only signatures could be put under any other agreement.
    alice.language = "en"
    alice.save()
    case = settled_case()

    pages = _summary_text(case, login(lawyer.user)).split("\f")

    [signed] = [page for page in pages if signature_row(page, "en").search(page)]
    assert "1404.80 yuan (in capitals: 壹仟肆佰零肆元捌角)" in signed

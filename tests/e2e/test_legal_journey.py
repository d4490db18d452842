"""A textile worker paid too little sick pay logs in on her phone and sends her dispute with a
payslip; the union lawyer, whose queue page is open, sees it arrive, accepts it, records the
mediation session, the settlement and the payment, and closes; she downloads the mediation
record, and the public figures show the money secured."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from consult import services
from consult.models import Case, DocumentKind, Professional, Role, Skill, Status, User
from legal.models import CityRates, LawyerProfile, MediationOutcome, Result
from legal.views import capitals
from tests.consult import files_corpus as corpus
from tests.e2e.conftest import (
    Browsers,
    assert_accessible,
    download,
    marked,
    next_step,
    pdf_text,
    still_marked,
    upload,
    zh,
)
from tests.live import Daphne

WORKER_PHONE = "13912340077"
WORKER_NAME = "陈桂芳"
PASSWORD = "Textile-mill-2026"
EMPLOYER = "杭州某纺织有限公司"
PAYSLIP = "工资条.pdf"
AGREED = Decimal("598.00")


def at(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(path))


def record_form(page: Page, summary: str, action: str) -> Locator:
    """Unfold one of the lawyer's record forms and return it."""
    page.wait_for_load_state("load")  # styles in place: a late stylesheet moves what is clicked
    details = page.locator("#mediation details", has=page.locator("summary", has_text=summary))
    details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    return details.locator(f"form[action$='/{action}/']")


def worker_with_password(phone: str, name: str) -> User:
    """A resident the server can log in: it checks passwords with the project's hashers, not the
    fast one this process uses (few iterations: the server upgrades it on login)."""
    user = services.resident_signup(phone=phone, name=name, password=PASSWORD)
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    return user


def test_a_worker_gets_her_sick_pay_through_the_union_lawyer_and_the_public_sees_it(
    browsers: Browsers,
    server: Daphne,
    tmp_path: Path,
    sick_pay: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    sick_pay.required_documents = [DocumentKind.PAYSLIP]
    sick_pay.save(update_fields=["required_documents"])
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    lawyer = professional_factory([sick_pay], role=Role.LAWYER, name="张律师")
    LawyerProfile.objects.create(professional=lawyer, union="市总工会法律服务中心", firm="浙江明理律师事务所")
    worker_with_password(WORKER_PHONE, WORKER_NAME)

    # The lawyer is on duty, his queue page open.
    work = browsers.desktop("lawyer", user=lawyer.user)
    work.goto("/work/")
    expect(work.locator("#conn-state")).to_have_class("conn conn-connected")
    marked(work)

    # The worker finds the service on the home page; its page sends her to log in with her password.
    phone = browsers.phone("worker")
    phone.goto("/")
    assert_accessible(phone)
    phone.locator(f"#service-{sick_pay.code} a").click()
    expect(phone).to_have_url(at(f"/services/{sick_pay.code}/new/"))
    phone.locator("main").get_by_role("link", name=zh("Log in"), exact=True).click()
    expect(phone).to_have_url(at("/accounts/login/"))
    phone.fill("#id_username", WORKER_PHONE)
    phone.fill("#id_password", PASSWORD)
    assert_accessible(phone)
    phone.locator("main").get_by_role("button", name=zh("Log in")).click()

    # The labour-dispute intake, with her payslip.
    expect(phone).to_have_url(at(f"/services/{sick_pay.code}/new/"))
    phone.fill("#id_job_title", "纺织厂挡车工")
    phone.fill("#id_employment_start", "2019-03-01")
    phone.select_option("#id_city", "杭州")
    phone.fill("#id_employer_name", EMPLOYER)
    phone.locator("details.more summary").click()
    phone.fill("#id_employer_contact", "人事部 刘经理")
    phone.fill("#id_monthly_wage", "4000")
    expect(phone.locator("#id_sick_days")).to_be_visible()
    phone.fill("#id_sick_days", "20")
    phone.fill("#id_amount_received", "802")
    phone.locator("#id_amount_claimed").focus()
    expect(phone.locator("#id_amount_claimed")).to_have_value("1404.80")  # the estimate's, before sending
    phone.fill("#id_amount_claimed", "1400")
    next_step(phone)
    phone.fill("#id_what_happened", "病假20天，公司只发了802元，低于法定标准。")
    phone.fill("#id_desired_outcome", "补发病假工资差额。")
    phone.set_input_files("#id_files_payslip", files=[upload(PAYSLIP, "application/pdf", corpus.pdf(title="Payslip"))])
    expect(phone.locator(".missing")).to_be_hidden()
    phone.check("#id_share_consent")
    assert_accessible(phone)
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()

    expect(phone).to_have_url(at("/cases/"))
    case = Case.objects.get(resident__phone=WORKER_PHONE)
    assert (case.status, case.assignee_id) == (Status.ASSIGNED, lawyer.pk)
    expect(phone.locator("#documents")).to_contain_text(PAYSLIP)
    expect(phone.locator("#estimate")).to_be_visible()
    assert_accessible(phone)
    marked(phone)

    # It appears among the lawyer's open cases by itself; he opens and accepts it.
    opened = work.locator("#my-open-cases").get_by_role("link", name=re.compile(case.reference))
    expect(opened).to_be_visible()
    assert still_marked(work), "the queue page was reloaded"
    opened.click()
    expect(work).to_have_url(at(f"/cases/{case.reference}/"))
    work.get_by_role("button", name=zh("Accept the case")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")
    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")

    # The mediation session...
    session = record_form(work, zh("Record a session"), "session")
    expect(session.get_by_label(zh("Date"))).to_have_value(timezone.localdate().isoformat())
    session.get_by_label(zh("Who attended")).fill("张律师、人事部刘经理、陈桂芳")
    session.get_by_label(zh("Notes")).fill("公司同意按法定标准补发病假工资差额。")
    assert_accessible(work)
    session.get_by_role("button", name=zh("Save")).click()
    expect(work.locator(".messages")).to_contain_text(zh("The mediation session is recorded."))

    # ...the settlement, with the amount and when it is due...
    outcome = record_form(work, zh("Record the outcome"), "outcome")
    outcome.get_by_label(zh("Result")).select_option(Result.SETTLED.value)
    outcome.get_by_label(zh("Amount agreed (yuan)")).fill(str(AGREED))
    outcome.get_by_label(zh("Payment due by")).fill((timezone.localdate() + timedelta(days=14)).isoformat())
    outcome.get_by_label(zh("Terms of the agreement")).fill("公司两周内一次性补发。")
    outcome.get_by_role("button", name=zh("Save")).click()
    expect(work.locator(".messages")).to_contain_text(zh("The outcome is recorded."))

    # ...and the money the worker received.
    payment = record_form(work, zh("Record a payment received"), "payment")
    payment.get_by_label(zh("Amount received (yuan)")).fill(str(AGREED))
    payment.get_by_role("button", name=zh("Save")).click()
    expect(work.locator(".messages")).to_contain_text(zh("The payment is recorded."))
    settled = MediationOutcome.objects.get(case=case)
    assert (settled.result, settled.amount_agreed, settled.amount_received) == (Result.SETTLED, AGREED, AGREED)

    work.get_by_role("button", name=zh("Mark resolved")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.RESOLVED}")
    work.get_by_role("button", name=zh("Close the case")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.CLOSED}")
    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.CLOSED}")
    assert still_marked(phone), "the case page was reloaded"

    # She downloads the mediation record: the employer, the amount in figures and in capitals.
    phone.goto(f"/cases/{case.reference}/")
    record = phone.locator("#documents li.document", has_text=case.reference)
    expect(record).to_have_count(1)
    text = pdf_text(download(phone, record.get_by_role("link", name=zh("Download")), tmp_path))
    assert EMPLOYER in text and WORKER_NAME in text, text[:500]
    assert str(AGREED) in text and capitals(AGREED) in text, text

    # Anyone can see what the service secured for workers, without logging in.
    public = browsers.phone("public")
    public.goto("/figures/")
    secured = public.locator(".figure", has_text=zh("yuan paid to workers")).locator(".n")
    expect(secured).to_have_text(str(AGREED))
    expect(public.locator(".figure", has_text=zh("disputes settled")).locator(".n")).to_have_text("1")
    assert_accessible(public)

    assert browsers.js_errors() == []

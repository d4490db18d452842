"""Every page of the two journeys, on a phone, as each person sees it: every visible form field
has a label, the base type is at least 16 px, and every button is at least 44 px high. The
lawyer's folded record forms are unfolded, and forms are also checked showing their errors.

Every page of every role in both languages on a phone (390 x 844): no serious or critical
violation found by axe-core, every control at least 44 x 44 px, and no request to another host."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from consult import services as core
from consult.models import Case, Professional, Role, Skill, User
from legal import services as legal
from legal.models import CityRates, Result
from medical import services as medical
from tests.e2e.conftest import Audit, Browsers, Targets, audit, axe_violations, small_targets, zh
from tests.live import Daphne


def consultation(resident: User, skill: Skill, doctor: Professional) -> Case:
    case, _problems = medical.medical_case_submit(
        resident=resident, skill=skill, complaint="咳嗽两周，夜里加重。", since_when="两周",
        patient_age=58, patient_sex="female", health_consent=True,
    )
    assert case.assignee_id == doctor.pk
    return core.case_accept(case=case, professional=doctor)


def dispute(resident: User, skill: Skill, lawyer: Professional) -> Case:
    case, _problems = legal.legal_case_submit(
        resident=resident, skill=skill, share_consent=True, job_title="纺织厂挡车工",
        employment_start=date(2019, 3, 1), employer_name="杭州某纺织有限公司",
        what_happened="病假20天，公司只发了802元。", monthly_wage=Decimal("4000"), amount_received=Decimal("802"),
        amount_claimed=Decimal("1400"), desired_outcome="补发差额。", city="杭州", sick_days=20,
    )
    assert case.assignee_id == lawyer.pk
    return core.case_accept(case=case, professional=lawyer)


def test_every_page_of_the_journeys_has_labels_large_type_and_big_buttons_on_a_phone(
    browsers: Browsers,
    server: Daphne,
    alice: User,
    respiratory: Skill,
    sick_pay: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    doctor = professional_factory([respiratory], name="王芳")
    lawyer = professional_factory([sick_pay], role=Role.LAWYER, name="张律师")
    open_case = consultation(alice, respiratory, doctor)
    closed_case = consultation(alice, respiratory, doctor)
    medical.note_save(
        case=closed_case, professional=doctor, findings="未见异常。", impression="感冒。", advice="多喝水。"
    )
    core.case_resolve(case=closed_case, professional=doctor)
    core.case_close(case=closed_case, user=doctor.user)
    labour_case = dispute(alice, sick_pay, lawyer)
    due = timezone.localdate() + timedelta(days=14)
    legal.outcome_record(
        case=labour_case, professional=lawyer, result=Result.SETTLED, amount_agreed=Decimal("598"), payment_due=due
    )

    audits: list[Audit] = []

    def check(page: Page, path: str | None = None) -> None:
        if path is not None:
            page.goto(path)
        audits.append(audit(page))

    public = browsers.phone("public")
    for path in ("/", "/accounts/login/", "/accounts/password/reset/", "/track/", "/figures/", "/accounts/signup/"):
        check(public, path)
    public.locator("main").get_by_role("button", name=zh("Sign up")).click()  # empty: errors shown
    expect(public.locator("main .error").first).to_be_visible()
    check(public)
    check(public, f"/track/?ref={open_case.reference}")
    public.fill("#id_phone_last4", "0001")
    public.locator("main").get_by_role("button", name=zh("Check")).click()
    expect(public.locator("#track-result")).to_be_visible()
    check(public)

    resident = browsers.phone("resident", user=alice)
    for path in (
        "/cases/", f"/cases/{open_case.reference}/", f"/cases/{labour_case.reference}/",
        f"/cases/{open_case.reference}/receipt/", f"/services/{sick_pay.code}/new/", "/accounts/phone/",
    ):
        check(resident, path)
    check(resident, f"/cases/{closed_case.reference}/")
    expect(resident.locator("#rating")).to_be_visible()
    check(resident, f"/services/{respiratory.code}/new/")
    # Sent empty (as a browser without JavaScript sends it): the server's errors, on the step that has one.
    resident.evaluate("document.querySelector('form[data-intake]').submit()")
    expect(resident.locator("form[data-intake] .error").first).to_be_visible()
    check(resident)

    doctor_phone = browsers.phone("doctor", user=doctor.user)
    for path in (
        "/work/", f"/cases/{open_case.reference}/", f"/medical/cases/{open_case.reference}/note/",
    ):
        check(doctor_phone, path)

    lawyer_phone = browsers.phone("lawyer", user=lawyer.user)
    check(lawyer_phone, "/work/")
    lawyer_phone.goto(f"/cases/{labour_case.reference}/")
    for summary in lawyer_phone.locator("#mediation details summary").all():
        summary.click()
    # The settlement's due date is shown as it was recorded, ready to correct.
    outcome = lawyer_phone.locator("form[action$='/outcome/']")
    expect(outcome.get_by_label(zh("Payment due by"))).to_have_value(due.isoformat())
    check(lawyer_phone)

    problems = [problem for page in audits for problem in page.problems]
    assert problems == [], "\n".join(problems)
    # The checks saw what they were meant to: fields and buttons on every page with a form.
    assert sum(a.fields for a in audits) > 60 and sum(a.buttons for a in audits) > 40, audits
    assert all(a.buttons > 0 for a in audits), [a.url for a in audits if not a.buttons]
    assert browsers.js_errors() == []


def every_page(
    alice: User, coordinator: User, respiratory: Skill, sick_pay: Skill,
    professional_factory: Callable[..., Professional],
) -> dict[str, tuple[User | None, list[str]]]:
    """Every page of every role, with the cases that fill them: role -> (who, paths)."""
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    doctor = professional_factory([respiratory], name="王芳")
    lawyer = professional_factory([sick_pay], role=Role.LAWYER, name="张律师")
    open_case = consultation(alice, respiratory, doctor)
    closed_case = consultation(alice, respiratory, doctor)
    medical.note_save(
        case=closed_case, professional=doctor, findings="未见异常。", impression="感冒。", advice="多喝水。"
    )
    core.case_resolve(case=closed_case, professional=doctor)
    core.case_close(case=closed_case, user=doctor.user)
    labour_case = dispute(alice, sick_pay, lawyer)
    return {
        "anonymous": (None, [
            "/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/track/",
            f"/track/?ref={open_case.reference}", "/figures/",
        ]),
        "resident": (alice, [
            "/", "/cases/", f"/cases/{open_case.reference}/", f"/cases/{closed_case.reference}/",
            f"/cases/{labour_case.reference}/", f"/cases/{open_case.reference}/receipt/",
            f"/services/{respiratory.code}/new/", f"/services/{sick_pay.code}/new/", "/accounts/phone/",
            "/notices/settings/", "/accounts/password/",
        ]),
        "doctor": (doctor.user, [
            "/work/", f"/cases/{open_case.reference}/", f"/medical/cases/{open_case.reference}/note/",
            "/accounts/2fa/recovery-codes/",
        ]),
        "lawyer": (lawyer.user, ["/work/", f"/cases/{labour_case.reference}/"]),
        "coordinator": (coordinator, [
            "/coordinator/", "/coordinator/report/", "/coordinator/posters/", "/accounts/lockouts/",
            "/privacy/erasure/", f"/cases/{open_case.reference}/",
        ]),
    }


@pytest.mark.slow
def test_every_page_of_every_role_passes_axe_has_big_targets_and_asks_no_other_host(
    browsers: Browsers,
    server: Daphne,
    alice: User,
    coordinator: User,
    respiratory: Skill,
    sick_pay: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    pages = every_page(alice, coordinator, respiratory, sick_pay, professional_factory)
    violations: list[str] = []
    small: list[Targets] = []
    seen = 0
    for language in ("zh-hans", "en"):
        for role, (user, paths) in pages.items():
            # Folded forms are checked unfolded. axe is injected as an inline script: this phone
            # lets it past the policy (the CSP itself is proven in test_content_security_policy.py).
            phone = browsers.phone(f"{role}-{language}", user=user, language=language, bypass_csp=True)
            for path in paths:
                response = phone.goto(path)
                assert response is not None and response.status == 200, (language, role, path)
                phone.evaluate("document.querySelectorAll('main details').forEach(d => { d.open = true; })")
                violations += axe_violations(phone)
                small.append(small_targets(phone))
                seen += 1
    # Elderly mode, switched on from the header with no script: the resident's pages still pass.
    elderly = browsers.phone("resident-large-text", user=alice, bypass_csp=True, java_script_enabled=False)
    elderly.goto("/cases/")
    elderly.locator("header form.display button").click()
    expect(elderly.locator("html")).to_have_class("large-text")
    large = browsers.phone("resident-large-text-js", user=alice, bypass_csp=True)
    for path in pages["resident"][1][:8]:
        large.goto(path)
        expect(large.locator("html")).to_have_class("large-text")
        violations += axe_violations(large)
        small.append(small_targets(large))
    # An urgent sign ticked on the intake: the call to 120 shows, red, and it is checked too.
    large.goto(f"/services/{respiratory.code}/new/")
    large.locator("input[name=urgent_signs]").first.check()
    call = large.locator("#emergency a[href='tel:120']")
    expect(call).to_be_visible()
    assert call.evaluate("el => getComputedStyle(el).backgroundColor") in ("rgb(179, 38, 30)", "rgb(140, 0, 0)")
    violations += axe_violations(large)
    small.append(small_targets(large))
    problems = [p for t in small for p in t.problems]
    assert violations == [], "\n".join(violations)
    assert problems == [], "\n".join(problems)
    assert browsers.foreign_requests() == []
    # The checks saw what they were meant to: every page, with controls on each.
    assert seen == 2 * sum(len(paths) for _user, paths in pages.values()) and len(small) == seen + 9
    assert all(t.controls > 0 for t in small)
    assert browsers.js_errors() == []

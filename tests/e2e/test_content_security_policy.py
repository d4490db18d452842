"""The strict Content-Security-Policy holds in a real browser: every main page of every role, the
public pages, the log-in, the admin and the API docs (Swagger UI and ReDoc) load with no `securitypolicyviolation` event
and no CSP error in the console, their style sheets and scripts applied, and no request to any
other host; and the chat still talks
over its websocket under the policy (a resident's message reaches the doctor's open page).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from consult.models import Professional, Role, Skill, User
from legal.models import CityRates
from tests.e2e.conftest import Browsers, zh, zh_in
from tests.e2e.test_accessibility import consultation, dispute
from tests.live import Daphne

# Runs before any script of the page (Playwright injects it past the policy): every violation
# the browser reports to the page is handed to the test.
LISTEN = """
document.addEventListener('securitypolicyviolation', e => {
  const where = `${e.sourceFile || location.href}:${e.lineNumber}`;
  window.__reportViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} in ${where}`);
});
"""


class Watch:
    """Violations and CSP console errors of every page of one browser context."""

    def __init__(self, context: BrowserContext) -> None:
        self.found: list[str] = []
        context.expose_function("__reportViolation", lambda text: self.found.append(text))
        context.add_init_script(LISTEN)
        context.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Permissions-Policy" in text or "Permissions policy" in text:
            self.found.append(f"console: {text}")


def visit(page: Page, path: str, seen: list[str]) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    assert "content-security-policy" in response.headers, path
    page.wait_for_load_state("load")
    seen.append(path)


def test_it_loads_every_main_page_of_every_role_without_a_policy_violation(
    browsers: Browsers,
    server: Daphne,
    alice: User,
    coordinator: User,
    respiratory: Skill,
    sick_pay: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    doctor = professional_factory([respiratory], name="王芳")
    lawyer = professional_factory([sick_pay], role=Role.LAWYER, name="张律师")
    medical_case = consultation(alice, respiratory, doctor)
    labour_case = dispute(alice, sick_pay, lawyer)
    seen: list[str] = []
    watches: list[Watch] = []

    def opened(page: Page) -> Page:
        watches.append(Watch(page.context))
        return page

    public = opened(browsers.phone("public"))
    for path in (
        "/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/track/", "/figures/",
        f"/track/?ref={medical_case.reference}", "/api/v1/redoc/", "/api/v1/docs/",
    ):
        visit(public, path, seen)
        if path == "/api/v1/redoc/":
            # ReDoc ran from this site's bundle: the operations are listed (it writes its own
            # styles, the one thing its page lets in inline).
            expect(public.locator("h2", has_text="auth_code_create").first).to_be_visible()
    # Swagger UI ran (its bundle and start-up script are this site's): the operations are listed.
    expect(public.locator(".opblock").first).to_be_visible()
    # The site's own style sheet applies: the header is laid out by static/css/site.css.
    public.goto("/")
    assert public.evaluate("getComputedStyle(document.body).margin") != "8px"

    resident = opened(browsers.phone("resident", user=alice))
    for path in (
        "/cases/", f"/cases/{labour_case.reference}/", f"/cases/{medical_case.reference}/receipt/",
        f"/services/{respiratory.code}/new/", f"/services/{sick_pay.code}/new/", "/accounts/phone/",
        "/notices/settings/", "/accounts/password/", f"/cases/{medical_case.reference}/",
    ):
        visit(resident, path, seen)

    doctor_page = opened(browsers.desktop("doctor", user=doctor.user))
    for path in ("/work/", f"/medical/cases/{medical_case.reference}/note/", f"/cases/{medical_case.reference}/"):
        visit(doctor_page, path, seen)

    # The chat under the policy: both sockets connect, a message goes from the phone to the desk.
    for page in (resident, doctor_page):
        expect(page.locator("#conn-state")).to_have_text(zh("Connected"))
    resident.fill("#chat-input", "医生您好，CSP 下也能发消息。")
    resident.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()
    expect(doctor_page.locator("#chat-log li.theirs", has_text="CSP 下也能发消息")).to_be_visible()

    lawyer_page = opened(browsers.desktop("lawyer", user=lawyer.user))
    for path in ("/work/", f"/cases/{labour_case.reference}/"):
        visit(lawyer_page, path, seen)

    desk = opened(browsers.desktop("coordinator", user=coordinator))
    for path in (
        "/coordinator/", "/coordinator/report/", "/coordinator/posters/", "/admin/", "/admin/consult/case/",
        f"/admin/consult/case/{medical_case.pk}/change/", "/admin/consult/skill/add/",
    ):
        visit(desk, path, seen)
    # The admin's own scripts ran on its last page (a change form).
    assert desk.evaluate("typeof window.django === 'object' && typeof window.django.jQuery === 'function'")

    violations = [text for watch in watches for text in watch.found]
    assert violations == [], "\n".join(violations)
    # Nothing from another host on any of them (no CDN, no web font): blank offline otherwise.
    assert browsers.foreign_requests() == []
    assert browsers.js_errors() == []
    assert len(seen) >= 25, seen

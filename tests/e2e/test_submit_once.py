"""A resident taps "Send" twice: the first tap disables the button, the browser sends the intake
once, and one case is opened."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, Request, expect

from consult.models import Case, Professional, Skill, User
from tests.e2e.conftest import Browsers, next_step, zh
from tests.live import Daphne

# Notes in the tab's sessionStorage (it outlives the navigation) when the button is disabled.
WATCH_BUTTON = """() => {
  const button = document.querySelector("form[data-intake] button[type=submit]");
  new MutationObserver(() => {
    if (button.disabled) sessionStorage.setItem("send-disabled", "yes");
  }).observe(button, {attributes: true});
}"""


def test_a_double_tapped_send_button_sends_the_intake_once(
    browsers: Browsers, server: Daphne, respiratory: Skill, alice: User,
    professional_factory: Callable[..., Professional],
) -> None:
    professional_factory([respiratory], name="王芳")
    phone: Page = browsers.phone("resident", alice)
    phone.goto(f"/services/{respiratory.code}/new/")
    phone.fill("#id_complaint", "咳嗽两周，夜里加重。")
    phone.fill("#id_since_when", "两周")
    phone.fill("#id_patient_age", "58")
    phone.check("input[name=patient_sex][value=female]")
    next_step(phone)
    phone.check("#id_health_consent")
    posts: list[Request] = []
    phone.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    phone.evaluate(WATCH_BUTTON)

    # Both taps land before the server answers the first one.
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).dblclick()

    expect(phone).to_have_url(re.compile(r"/cases/[A-Z0-9]+/$"))
    assert phone.evaluate("sessionStorage.getItem('send-disabled')") == "yes"
    assert len(posts) == 1
    assert Case.objects.filter(resident=alice).count() == 1
    assert browsers.js_errors() == []

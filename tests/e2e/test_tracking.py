"""Anyone with the receipt finds where a case stands, by its reference and the last 4 digits of
the phone number, on a phone, without an account; and learns nothing from a wrong pair."""

from __future__ import annotations

from playwright.sync_api import expect

from consult import services
from consult.models import Skill, User
from tests.e2e.conftest import Browsers, assert_accessible, zh
from tests.live import Daphne

COMPLAINT = "咳嗽两周，夜里加重。"


def test_anyone_finds_a_case_by_reference_and_phone_digits_without_logging_in(
    browsers: Browsers, server: Daphne, alice: User, bob: User, respiratory: Skill
) -> None:
    # No doctor on duty: bob's case waits first in line, alice's second.
    services.case_submit(resident=bob, skill=respiratory, description="头晕。")
    case = services.case_submit(resident=alice, skill=respiratory, description=COMPLAINT)
    assert alice.phone.endswith("0001")

    # Her neighbour scanned the QR code on the receipt: the reference is filled in already.
    page = browsers.phone("neighbour")
    page.goto(f"/track/?ref={case.reference}")
    expect(page.locator("header")).to_contain_text(zh("Log in"))
    expect(page.locator("#id_reference")).to_have_value(case.reference)
    assert_accessible(page)

    # A wrong pair and a missing case get the same answer, and show nothing of the case.
    page.fill("#id_phone_last4", "0002")
    page.locator("main").get_by_role("button", name=zh("Check")).click()
    result = page.locator("#track-result")
    expect(result).to_have_text(
        zh("No case matches this reference and phone number. Please check both and try again.")
    )
    page.fill("#id_reference", "ZZZZ9999")
    page.fill("#id_phone_last4", "0001")
    page.locator("main").get_by_role("button", name=zh("Check")).click()
    expect(result).to_have_text(
        zh("No case matches this reference and phone number. Please check both and try again.")
    )

    # The right pair, typed as people do (lower case, spaces): status, place in line, next step.
    page.fill("#id_reference", " ".join(case.reference.lower()))
    page.fill("#id_phone_last4", "0001")
    page.locator("main").get_by_role("button", name=zh("Check")).click()
    expect(result.locator(".reference")).to_have_text(case.reference)
    expect(result).to_contain_text(respiratory.name_zh)
    expect(result.locator(".status")).to_have_text(zh("Waiting in line"))
    expect(result).to_contain_text(zh("You are number %(place)s in line.", place=2))
    expect(result).to_contain_text(zh("Your case is in line. A professional will take it soon."))
    main = page.locator("main")
    for private in (alice.name, alice.phone, COMPLAINT):
        expect(main).not_to_contain_text(private)
    assert_accessible(page)

    assert browsers.js_errors() == []

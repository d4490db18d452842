"""Issue 15's journeys on a 390 x 844 phone, in Chinese and in English: a new resident goes from a
poster to a sent case in at most 4 screens (page loads and intake steps) and 12 inputs; a reload in
the middle of the intake keeps what was typed; no screen of the way is taller than 3 screens
before its main action; staff land on their work page after logging in."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Locator, Page, expect

from consult import services
from consult.models import Case, Kind, Professional, Role, Skill, User
from legal.models import CityRates, LegalIntake
from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, Browsers, assert_accessible, next_step, zh
from tests.e2e.sms import sms_code
from tests.live import Daphne

SCREEN_PX = PHONE["viewport"]["height"]
MAX_SCREENS = 3
PLACE = "青山村卫生室"
DRAFT_NOTE = "What you type is kept on this phone until the case is sent, even if the page reloads."
FILES_NOTE = "Files are not kept on the phone: if the page reloads, choose them again."


def say(language: str, message: str) -> str:
    return zh(message) if language == "zh-hans" else message


def top_of(action: Locator) -> float:
    """Where the action starts, from the top of the page (what one scrolls past to reach it)."""
    return float(action.evaluate("el => el.getBoundingClientRect().top + window.scrollY"))


class Journey:
    """What a person goes through: each screen (a page load or an intake step) with the top of
    its main action, and each field typed, ticked or chosen."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.screens: list[tuple[str, float]] = []
        self.inputs = 0
        self.loads = 0
        page.on("framenavigated", lambda frame: self._loaded() if frame == page.main_frame else None)

    def _loaded(self) -> None:
        self.loads += 1

    def screen(self, name: str, action: Locator) -> None:
        expect(action).to_be_visible()
        top = top_of(action)
        assert top <= MAX_SCREENS * SCREEN_PX, f"{name}: main action at {top:.0f} px, past {MAX_SCREENS} screens"
        self.screens.append((name, top))

    def fill(self, selector: str, value: str) -> None:
        self.page.fill(selector, value)
        self.inputs += 1

    def check(self, selector: str) -> None:
        self.page.check(selector)
        self.inputs += 1


def main_button(page: Page) -> Locator:
    return page.locator("main form.card button[type=submit]").first


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_new_resident_goes_from_a_poster_to_a_sent_case_in_four_screens(
    language: str,
    browsers: Browsers,
    server: Daphne,
    sms_folder: Path,
    job_worker: Path,
    respiratory: Skill,
    coordinator: User,
) -> None:
    poster = services.poster_create(skill=respiratory, place=PLACE, user=coordinator)
    phone = browsers.phone("resident", language=language)
    journey = Journey(phone)

    # The poster's QR code: the service, its office and its promised time, and a start at once.
    phone.goto(server.url + services.poster_url(poster).removeprefix(settings.SITE_URL))
    expect(phone.locator("html")).to_have_attribute("lang", language)
    expect(phone.locator("h1")).to_have_text(respiratory.name_zh if language == "zh-hans" else respiratory.name_en)
    facts = phone.locator(".service-facts")
    expect(facts).to_contain_text(respiratory.office_phone)
    expect(facts).to_contain_text(respiratory.office_zh if language == "zh-hans" else respiratory.office_en)
    expect(facts).to_contain_text("24")
    expect(facts).to_contain_text(PLACE)
    assert_accessible(phone)
    journey.screen("poster landing", phone.locator("#start-button"))
    journey.fill("#id_name", "刘秀兰")
    journey.fill("#id_phone", "13812345678")
    phone.locator("#start-button").click()

    # The code from the SMS signs her up and brings her back to the service.
    expect(phone).to_have_url(re.compile(r"/accounts/signup/code/"))
    journey.screen("code", main_button(phone))
    journey.fill("#id_code", sms_code(sms_folder, "13812345678"))
    main_button(phone).click()

    expect(phone).to_have_url(re.compile(rf"/services/{respiratory.code}/new/"))
    expect(phone.locator(".progress li[aria-current=step]")).to_contain_text(say(language, "What is wrong"))
    assert_accessible(phone)
    journey.screen("intake step 1", phone.locator("[data-next]"))
    journey.fill("#id_complaint", "咳嗽两周，夜里加重。")
    journey.fill("#id_since_when", "两周")
    journey.fill("#id_patient_age", "72")
    journey.check("input[name=patient_sex][value=female]")
    next_step(phone)

    expect(phone.locator(".progress li[aria-current=step]")).to_contain_text(say(language, "Documents and send"))
    send = phone.locator("form[data-intake]").get_by_role("button", name=say(language, "Send"), exact=True)
    assert_accessible(phone)
    journey.screen("intake step 2", send)
    journey.check("#id_health_consent")
    send.click()

    expect(phone).to_have_url(re.compile(r"/cases/[A-Z0-9]+/$"))
    case = Case.objects.get(resident__phone="13812345678")
    assert (case.skill_id, case.source_place) == (respiratory.pk, PLACE)
    assert [name for name, _top in journey.screens] == ["poster landing", "code", "intake step 1", "intake step 2"]
    # Three page loads before the case page (the landing, the code, the intake) and one step.
    assert journey.loads - 1 == 3
    assert len(journey.screens) <= 4
    assert journey.inputs <= 12
    assert browsers.js_errors() == []


def test_a_reload_in_the_middle_of_the_intake_keeps_what_was_typed_until_the_case_is_sent(
    browsers: Browsers, server: Daphne, respiratory: Skill, alice: User
) -> None:
    phone = browsers.phone("resident", alice)
    phone.goto(f"/services/{respiratory.code}/new/")
    phone.fill("#id_complaint", "咳嗽两周，夜里加重。")
    phone.fill("#id_since_when", "两周")
    phone.check("#id_on_behalf")
    phone.fill("#id_patient_name", "刘建国")
    phone.fill("#id_patient_age", "72")
    phone.check("input[name=patient_sex][value=male]")
    expect(phone.locator("[data-draft-note]")).to_be_visible()
    expect(phone.locator("[data-draft-note]")).to_contain_text(zh(DRAFT_NOTE))

    phone.reload()

    expect(phone.locator("#id_complaint")).to_have_value("咳嗽两周，夜里加重。")
    expect(phone.locator("#id_since_when")).to_have_value("两周")
    expect(phone.locator("#id_on_behalf")).to_be_checked()
    expect(phone.locator("#id_patient_name")).to_be_visible()
    expect(phone.locator("#id_patient_name")).to_have_value("刘建国")
    expect(phone.locator("#id_patient_age")).to_have_value("72")
    expect(phone.locator("input[name=patient_sex][value=male]")).to_be_checked()
    expect(phone.locator("[data-draft-restored]")).to_be_visible()

    next_step(phone)
    expect(phone.locator("[data-draft-files]")).to_have_text(zh(FILES_NOTE))
    phone.check("#id_health_consent")
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()
    expect(phone).to_have_url(re.compile(r"/cases/[A-Z0-9]+/$"))
    assert Case.objects.get(resident=alice).description == "咳嗽两周，夜里加重。"

    # Sent: the case page clears the draft, and the next intake starts empty.
    # A function, not an expression: Playwright polls an expression with eval, which the CSP forbids.
    phone.wait_for_function("() => Object.keys(localStorage).every(k => !k.startsWith('intake-draft:'))")
    phone.goto(f"/services/{respiratory.code}/new/")
    expect(phone.locator("#id_complaint")).to_have_value("")
    expect(phone.locator("[data-draft-restored]")).to_be_hidden()
    assert phone.evaluate("Object.keys(localStorage).filter(k => k.startsWith('intake-draft:')).length") == 0
    assert browsers.js_errors() == []


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_catalogue_is_grouped_searchable_and_no_taller_than_three_screens(
    language: str, browsers: Browsers, server: Daphne, skill_factory: Callable[..., Skill]
) -> None:
    # As many services as the seeded catalogue: 9 specialties, 8 practice areas.
    for n in range(9):
        skill_factory(name_zh=f"专科{n}", name_en=f"Specialty {n}")
    for n in range(8):
        skill_factory(kind=Kind.LEGAL, name_zh=f"争议{n}", name_en=f"Dispute {n}")
    wanted = skill_factory(kind=Kind.LEGAL, name_zh="病假工资", name_en="Sick pay")
    phone = browsers.phone("visitor", language=language)

    phone.goto("/")
    cards = phone.locator(".service-card a")
    expect(cards).to_have_count(18)
    last = cards.last
    assert top_of(last) + float(last.evaluate("el => el.getBoundingClientRect().height")) <= MAX_SCREENS * SCREEN_PX
    assert_accessible(phone)

    search = phone.locator(".catalogue-search input[name=q]")
    search.fill("病假" if language == "zh-hans" else "sick")
    phone.locator(".catalogue-search").get_by_role("button", name=say(language, "Search")).click()
    expect(phone).to_have_url(re.compile(r"\?q="))
    expect(cards).to_have_count(1)
    cards.first.click()
    expect(phone).to_have_url(re.compile(rf"/services/{wanted.code}/new/"))
    expect(phone.locator("h1")).to_have_text(wanted.name_zh if language == "zh-hans" else wanted.name_en)
    assert browsers.js_errors() == []


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_labour_intake_shows_the_estimate_before_sending_and_prefills_the_amount_owed(
    language: str,
    browsers: Browsers,
    server: Daphne,
    sick_pay: Skill,
    professional_factory: Callable[..., Professional],
    alice: User,
) -> None:
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    professional_factory([sick_pay], role=Role.LAWYER, name="张律师")
    phone = browsers.phone("worker", alice, language=language)
    phone.goto(f"/services/{sick_pay.code}/new/")
    phone.fill("#id_job_title", "纺织厂挡车工")
    phone.fill("#id_employment_start", "2019-03-01")
    phone.select_option("#id_city", "杭州")
    phone.fill("#id_employer_name", "杭州某纺织有限公司")
    phone.fill("#id_monthly_wage", "4000")
    phone.fill("#id_sick_days", "20")
    phone.fill("#id_amount_received", "802")
    phone.locator("#id_amount_claimed").focus()  # leaving the amount received: the estimate is asked for
    expect(phone.locator("#estimate-preview #estimate")).to_be_visible()
    expect(phone.locator("#id_amount_claimed")).to_have_value("1404.80")
    assert top_of(phone.locator("[data-next]")) <= MAX_SCREENS * SCREEN_PX
    assert_accessible(phone)
    next_step(phone)

    phone.fill("#id_what_happened", "病假20天，公司只发了802元。")
    phone.fill("#id_desired_outcome", "补发病假工资差额。")
    expect(phone.locator("#id_materials_later")).to_be_hidden()  # nothing required is missing
    phone.check("#id_share_consent")
    send = phone.locator("form[data-intake]").get_by_role("button", name=say(language, "Send"), exact=True)
    assert top_of(send) <= MAX_SCREENS * SCREEN_PX
    assert_accessible(phone)
    send.click()

    expect(phone).to_have_url(re.compile(r"/cases/[A-Z0-9]+/$"))
    assert LegalIntake.objects.get(case__resident=alice).amount_claimed == Decimal("1404.80")
    assert browsers.js_errors() == []


@pytest.mark.parametrize(("who", "lands_on"), [("doctor", "/work/"), ("coordinator", "/coordinator/")])
def test_staff_land_on_their_work_page_after_logging_in(
    who: str, lands_on: str, browsers: Browsers, server: Daphne, doctor: Professional, coordinator: User
) -> None:
    user = doctor.user if who == "doctor" else coordinator
    # A hash the server checks (its hashers, not the fast one this process uses).
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    phone = browsers.phone(who)
    phone.goto("/accounts/login/")
    phone.fill("#id_username", user.phone)
    phone.fill("#id_password", PASSWORD)
    phone.locator("main").get_by_role("button", name=zh("Log in with my password")).click()

    expect(phone).to_have_url(re.compile(r"/accounts/2fa/verify/"))
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    phone.fill("#id_code", f"{code:06d}")
    phone.locator("main").get_by_role("button", name=zh("Continue")).click()

    expect(phone).to_have_url(re.compile(rf"{re.escape(lands_on)}$"))
    assert browsers.js_errors() == []

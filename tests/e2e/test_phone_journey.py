"""The journey of issue 13, on the real server with a real job worker: a new resident scans a poster,
signs up on the service's page with the code the SMS brings (no password), opens a case and closes her browser; the
doctor takes the case and answers; the SMS she gets links back to the case, and she comes in by a
code on a fresh phone browser, to the doctor's answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from playwright.sync_api import expect

from accounts.models import CodeQuota
from consult import services
from consult.models import Case, Professional, Skill, Status, User
from notices.kinds import NoticeKind
from tests.e2e.conftest import Browsers, assert_accessible, next_step, zh, zh_in
from tests.e2e.sms import link_path, sms_code, wait_for_sms
from tests.live import Daphne

PLACE = "青山村卫生室"
NAME = "刘秀兰"
PHONE = "13812345678"
COMPLAINT = "咳嗽两周，夜里加重。"
ANSWER = "多喝温水，按时服药，一周后复查胸片。"


def at(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(path))


def test_a_new_resident_signs_up_by_code_leaves_and_an_sms_brings_her_back_to_the_answer(
    browsers: Browsers,
    server: Daphne,
    sms_folder: Path,
    job_worker: Path,
    respiratory: Skill,
    professional_factory: Callable[..., Professional],
    coordinator: User,
) -> None:
    doctor = professional_factory([respiratory], name="王芳", on_duty=False)
    poster = services.poster_create(skill=respiratory, place=PLACE, user=coordinator)

    # She scans the poster: the service's own page, where she starts with her name and number,
    # then the code from the SMS.
    phone = browsers.phone("resident")
    phone.goto(server.url + services.poster_url(poster).removeprefix(settings.SITE_URL))
    expect(phone.locator("h1")).to_have_text(respiratory.name_zh)
    phone.fill("#id_name", NAME)
    phone.fill("#id_phone", PHONE)
    phone.locator("main").get_by_role("button", name=zh("Send me a code")).click()
    expect(phone).to_have_url(at("/accounts/signup/code/"))
    phone.fill("#id_code", sms_code(sms_folder, PHONE))
    phone.locator("main").get_by_role("button", name=zh("Create my account")).click()

    # Straight to the poster's service, where she describes the problem and sends it.
    expect(phone).to_have_url(at(f"/services/{respiratory.code}/new/"))
    resident = User.objects.get(phone=PHONE)
    assert (resident.name, resident.is_resident, resident.has_usable_password()) == (NAME, True, False)
    phone.fill("#id_complaint", COMPLAINT)
    phone.fill("#id_since_when", "两周")
    phone.fill("#id_patient_age", "72")
    phone.check("input[name=patient_sex][value=female]")
    next_step(phone)
    phone.check("#id_health_consent")
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()
    expect(phone).to_have_url(at("/cases/"))
    case = Case.objects.get(resident=resident)
    assert (case.status, case.source_place) == (Status.WAITING, PLACE)

    # She leaves: the browser is closed, her session with it.
    phone.context.close()

    # The doctor takes the case and answers in the chat.
    work = browsers.desktop("doctor", user=doctor.user)
    work.goto("/work/")
    # Going on duty gives him the waiting case and takes him to it; he accepts it.
    work.get_by_role("button", name=zh("Go on duty")).click()
    expect(work).to_have_url(at(f"/cases/{case.reference}/"))
    work.get_by_role("button", name=zh("Accept the case")).click()
    expect(work).to_have_url(at(f"/cases/{case.reference}/"))
    expect(work.locator("#conn-state")).to_have_class("conn conn-connected")
    work.fill("#chat-input", ANSWER)
    work.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()
    expect(work.locator("#chat-log li.mine", has_text=ANSWER)).to_have_attribute("data-seq", re.compile(r"^\d+$"))

    # She is away: the SMS she gets says her case has a new message, and links to it.
    told = wait_for_sms(sms_folder, PHONE, NoticeKind.NEW_MESSAGE)
    assert case.reference in told["text"]
    path = link_path(told["text"])

    # On a fresh browser (later: a number gets a new code a minute after the last) the link asks
    # her to log in: a code, the default, and she is on her case.
    CodeQuota.objects.filter(scope=f"phone:{PHONE}").update(last_sent_at=None)
    again = browsers.phone("resident-again")
    again.goto(server.url + path)
    expect(again).to_have_url(at("/accounts/login/"))
    assert_accessible(again)
    again.fill("#id_phone", PHONE)
    again.locator("main").get_by_role("button", name=zh("Send me a code")).click()
    expect(again).to_have_url(at("/accounts/login/code/"))
    again.fill("#id_code", sms_code(sms_folder, PHONE, count=2))
    again.locator("main").get_by_role("button", name=zh("Log in")).click()
    expect(again).to_have_url(at(f"/cases/{case.reference}/"))
    expect(again.locator("#chat-log li.theirs", has_text=ANSWER)).to_have_count(1)
    expect(again.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")
    assert browsers.js_errors() == []

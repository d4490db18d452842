"""Voice messages in the case room, in a real Chromium with its fake microphone (a beep): the
resident records one on her phone and the doctor's page plays it with its length; the doctor
answers the same way; a browser without MediaRecorder shows no button."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from consult import services
from consult.models import Document, DocumentKind, Professional, Skill, User
from tests.e2e.conftest import CHROMIUM, LAUNCH_ARGS, Browsers
from tests.e2e.test_case_page import open_case, resident_phone, text
from tests.live import Daphne

FAKE_MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
PLAYABLE = (
    "(selector) => { const a = document.querySelector(selector);"
    " return a !== null && a.readyState >= 1 && !a.error; }"
)


@pytest.fixture(scope="module")
def microphone_browser(browser: Browser) -> Iterator[Browser]:
    """A Chromium of its own with the fake microphone, started by the package's Playwright."""
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*LAUNCH_ARGS, *FAKE_MICROPHONE]
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def people(microphone_browser: Browser, server: Daphne) -> Iterator[Browsers]:
    screens = Browsers(microphone_browser, server)
    yield screens
    screens.close()


def record(page: Page, seconds: float) -> None:
    page.locator("#voice-start").click()
    expect(page.locator("#voice")).to_have_class(re.compile(r"\brecording\b"))
    page.wait_for_timeout(seconds * 1000)
    page.locator("#voice-send").click()
    expect(page.locator("#voice-start")).to_be_visible()


def test_the_resident_sends_a_voice_message_and_the_doctor_plays_it_and_answers(
    people: Browsers, alice: User, respiratory: Skill, professional_factory: Callable[..., Professional]
) -> None:
    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    services.case_accept(case=case, professional=doctor)
    phone = resident_phone(people, alice, "zh-hans")
    open_case(phone, case, "zh-hans")
    work = people.desktop("doctor", user=doctor.user)
    open_case(work, case, "zh-hans")

    expect(phone.locator("#voice-start")).to_have_text(text("zh-hans", "Record a voice message"))
    record(phone, 2)

    # On the doctor's page, live: a player that has loaded the recording, its length beside it.
    theirs = work.locator("#chat-log li.theirs .chat-voice")
    expect(theirs).to_have_count(1)
    expect(theirs.locator(".voice-length")).to_have_text(re.compile(r"^0:0[1-3]$"))
    work.wait_for_function(PLAYABLE, arg="#chat-log li.theirs .chat-voice audio")
    # On hers too (the room's copy of her message).
    expect(phone.locator("#chat-log li.mine .chat-voice audio")).to_have_count(1)
    voice = Document.objects.get(case=case, kind=DocumentKind.VOICE)
    assert voice.content_type == "audio/webm" and 1000 <= (voice.duration_ms or 0) <= 3500

    # The doctor answers by voice; the resident's phone plays it.
    record(work, 1)
    expect(phone.locator("#chat-log li.theirs .chat-voice")).to_have_count(1)
    phone.wait_for_function(PLAYABLE, arg="#chat-log li.theirs .chat-voice audio")

    # After a reload the page itself (not the socket) shows both with their lengths.
    phone.reload()
    expect(phone.locator("#chat-log .chat-voice .voice-length")).to_have_count(2)
    assert not people.js_errors()


def test_without_mediarecorder_there_is_no_record_button(
    people: Browsers, alice: User, respiratory: Skill, professional_factory: Callable[..., Professional]
) -> None:
    professional_factory([respiratory])
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    phone = resident_phone(people, alice, "zh-hans")
    phone.add_init_script("delete window.MediaRecorder;")
    open_case(phone, case, "zh-hans")

    expect(phone.locator("#voice")).to_be_hidden()
    expect(phone.locator("#chat-form button[type=submit]")).to_be_visible()
    assert not people.js_errors()

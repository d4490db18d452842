"""The case page on a phone (390×844), in Chinese and in English: the chat on the first screen, a
live status change that leaves a half-typed field alone, withdraw behind a confirmation with an
undo, a rating that can be skipped, pictures in the chat with their time, read marks that a
reload keeps."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.conf import settings
from django.utils import translation
from playwright.sync_api import Page, expect

from consult import services
from consult.models import Case, Professional, Rating, Skill, Status, User
from tests.consult import files_corpus as corpus
from tests.e2e.conftest import PHONE, Browsers, upload
from tests.live import Daphne

LANGUAGES = ["zh-hans", "en"]
ADDRESS = "青山村 3 组 12 号，村委会往东第二家"


def text(language: str, message: str, context: str = "") -> str:
    """A project string as the page in `language` shows it."""
    with translation.override(language):
        return translation.pgettext(context, message) if context else translation.gettext(message)


def resident_phone(browsers: Browsers, user: User, language: str) -> Page:
    page = browsers.phone(f"resident-{language}", user=user)
    # As the language switch leaves it.
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": browsers.server.url}])
    assert page.viewport_size == PHONE["viewport"]
    return page


def open_case(page: Page, case: Case, language: str) -> None:
    page.goto(f"/cases/{case.reference}/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#conn-state")).to_have_class("conn conn-connected")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_doctor_accepting_leaves_the_address_the_resident_is_typing_and_the_chat_is_on_the_first_screen(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional], language: str,
) -> None:
    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    assert case.status == Status.ASSIGNED
    phone = resident_phone(browsers, alice, language)
    open_case(phone, case, language)

    # The conversation starts within the first screen, with its send button; the promise on top.
    top = phone.locator("#chat").bounding_box()
    assert top is not None and top["y"] < 844, top
    expect(phone.locator("#chat-form button[type=submit]")).to_have_text(text(language, "Send", "chat"))
    expect(phone.locator("#next-step")).to_contain_text("王芳")

    # She starts on the home-visit request and the chat, and does not finish before he accepts.
    address = phone.locator("#home-visit textarea[name=address], #home-visit input[name=address]")
    address.fill(ADDRESS)
    phone.fill("#chat-input", "还没写完")
    phone.locator("#chat-input").focus()

    work = browsers.desktop("doctor", user=doctor.user)
    work.goto(f"/cases/{case.reference}/")
    work.get_by_role("button", name=text("zh-hans", "Accept the case")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")

    # Her page follows live (status, next step, timeline) and keeps every character she typed.
    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")
    expect(phone.locator("#timeline")).to_contain_text(text(language, "accepted the case"))
    expect(address).to_have_value(ADDRESS)
    expect(phone.locator("#chat-input")).to_have_value("还没写完")
    # The form she was typing in still works: she finishes it and it is sent with her address.
    phone.locator("#home-visit [name=preferred_dates]").fill("周末上午")
    phone.locator("#home-visit").get_by_role("button", name=text(language, "Ask for a home visit")).click()
    expect(phone.locator("#home-visit")).to_contain_text(ADDRESS)
    assert not browsers.js_errors()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_resident_withdraws_after_confirming_and_undoes_it(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional], language: str,
) -> None:
    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    phone = resident_phone(browsers, alice, language)
    open_case(phone, case, language)

    # Nothing withdraws on one tap: the menu, the step that explains, then the confirming button.
    confirm = phone.get_by_role("button", name=text(language, "Yes, withdraw my case"))
    expect(confirm).to_be_hidden()
    phone.get_by_text(text(language, "More actions")).click()
    phone.get_by_text(text(language, "Withdraw my case"), exact=True).click()
    confirm.click()

    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.WITHDRAWN}")
    undo = phone.get_by_role("button", name=text(language, "Undo: reopen my case"))
    expect(undo).to_be_visible()
    undo.click()

    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.ASSIGNED}")
    expect(phone.locator("#timeline")).to_contain_text(text(language, "undid the withdrawal: the case is open again"))
    case.refresh_from_db()
    assert (case.status, case.assignee_id, case.withdrawn_at) == (Status.ASSIGNED, doctor.pk, None)
    assert not browsers.js_errors()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_resident_skips_the_rating(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional], language: str,
) -> None:
    professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    Case.objects.filter(pk=case.pk).update(status=Status.CLOSED)
    phone = resident_phone(browsers, alice, language)
    phone.goto(f"/cases/{case.reference}/")

    expect(phone.locator("body")).not_to_contain_text(text(language, "What you can do"))
    phone.locator("#rating").get_by_role("button", name=text(language, "Skip")).click()

    expect(phone.locator("#rating")).to_have_count(0)
    assert Rating.objects.get(case=case).score is None
    assert not browsers.js_errors()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_photo_from_the_chat_shows_as_a_picture_with_its_time_and_read_marks_survive_a_reload(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional], language: str,
) -> None:
    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    services.case_accept(case=case, professional=doctor)
    phone = resident_phone(browsers, alice, language)
    open_case(phone, case, language)

    # The camera's picture, sent from the chat's own button.
    phone.locator("#chat-photo").set_input_files(files=[upload("胸片.jpg", "image/jpeg", corpus.jpeg())])
    picture = phone.locator("#chat-log li.mine .chat-image img")
    expect(picture).to_have_count(1)
    phone.wait_for_function(
        "() => { const i = document.querySelector('#chat-log li.mine .chat-image img');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )
    mine = phone.locator("#chat-log li.mine").last
    expect(mine).to_have_attribute("data-seq", re.compile(r"^\d+$"))
    expect(mine.locator(".meta time")).to_have_text(re.compile(r"\d{2}:\d{2}"))
    expect(phone.locator("#documents")).to_contain_text("胸片.jpg")

    # The doctor sees the picture too, and reading it marks it read on her phone...
    work = browsers.desktop("doctor", user=doctor.user)
    work.goto(f"/cases/{case.reference}/")
    work.wait_for_function(
        "() => { const i = document.querySelector('#chat-log li.theirs .chat-image img');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )
    read = text(language, "read")
    expect(mine.locator(".receipt")).to_have_text(read)

    # ...and still after she reloads the page.
    phone.reload()
    expect(phone.locator("#chat-log li.mine").last.locator(".receipt")).to_have_text(read)
    expect(phone.locator("#chat-log li.mine").last.locator(".chat-image img")).to_be_visible()
    assert not browsers.js_errors()

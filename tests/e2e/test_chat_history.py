"""A long conversation on a phone: the case page comes with the newest messages only, "load
earlier messages" brings the rest a page at a time above them, in order, and the live chat goes on
below as before."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from consult import services
from consult.models import Case, Message, Professional, Skill, User
from consult.selectors import CHAT_PAGE
from tests.e2e.conftest import Browsers, zh, zh_in
from tests.live import Daphne

EARLIER = 2 * CHAT_PAGE + 10


def test_a_resident_reads_a_long_conversation_back_to_its_start_while_the_chat_goes_on(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    case = services.case_accept(case=case, professional=doctor)
    case.refresh_from_db()  # the status lines so far took the first numbers
    first = case.last_seq + 1
    Message.objects.bulk_create(
        Message(case=case, seq=first + n, sender=alice if n % 2 else doctor.user, body=f"第{n + 1}条")
        for n in range(EARLIER)
    )
    Case.objects.filter(pk=case.pk).update(last_seq=first + EARLIER - 1)
    total = first + EARLIER - 1

    phone = browsers.phone("resident", user=alice)
    phone.goto(f"/cases/{case.reference}/")
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")
    log = phone.locator("#chat-log li[data-seq]")
    expect(log).to_have_count(CHAT_PAGE)
    expect(phone.locator("#chat-log")).not_to_contain_text("第1条")
    earlier = phone.get_by_role("button", name=zh("Load earlier messages"))

    earlier.click()
    expect(log).to_have_count(2 * CHAT_PAGE)
    earlier.click()
    expect(log).to_have_count(total)
    expect(earlier).to_be_hidden()
    seqs = log.evaluate_all("items => items.map(li => Number(li.dataset.seq))")
    assert seqs == list(range(1, total + 1)), seqs
    expect(log.nth(first - 1)).to_have_text(re.compile("第1条"))

    # The live chat still works below the history: her new message lands last, once.
    phone.fill("#chat-input", "我把前面的都看完了。")
    phone.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()
    mine = phone.locator("#chat-log li.mine", has_text="我把前面的都看完了。")
    expect(mine).to_have_attribute("data-seq", str(total + 1))
    assert log.evaluate_all("items => items.map(li => Number(li.dataset.seq))") == list(range(1, total + 2))
    assert not browsers.js_errors()


def test_a_page_that_missed_more_than_a_page_of_messages_catches_up_on_all_of_them(
    browsers: Browsers, server: Daphne, alice: User, respiratory: Skill,
    professional_factory: Callable[..., Professional],
) -> None:
    from realtime.consumers import REPLAY_PAGE

    doctor = professional_factory([respiratory], name="王芳")
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    case = services.case_accept(case=case, professional=doctor)
    phone = browsers.phone("resident", user=alice)
    phone.goto(f"/cases/{case.reference}/")
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")
    log = phone.locator("#chat-log li[data-seq]")
    expect(log).not_to_have_count(0)
    case.refresh_from_db()
    first, missed = case.last_seq + 1, REPLAY_PAGE + 30
    # Stored while no broadcast reached her page (as during a layer outage).
    Message.objects.bulk_create(
        Message(case=case, seq=first + n, sender=doctor.user, body=f"错过的第{n + 1}条") for n in range(missed)
    )
    Case.objects.filter(pk=case.pk).update(last_seq=first + missed - 1)

    # Her next message is numbered past what the page holds: it asks the server page by page.
    phone.fill("#chat-input", "刚才断网了。")
    phone.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()
    expect(phone.locator("#chat-log li.mine", has_text="刚才断网了。")).to_have_attribute(
        "data-seq", str(first + missed)
    )
    expect(log).to_have_count(first + missed)
    seqs = log.evaluate_all("items => items.map(li => Number(li.dataset.seq))")
    assert seqs == list(range(1, first + missed + 1)), seqs
    assert not browsers.js_errors()

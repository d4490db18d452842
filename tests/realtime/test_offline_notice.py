"""A participant who is not in the room hears of new messages through the outbox (by e-mail here,
their chosen channel; by SMS otherwise): one per quiet period (settings.OFFLINE_NOTICE_QUIET_MINUTES),
never one per message, and none while they are in the room."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_prerun
from channels.db import database_sync_to_async
from django.core import mail
from django.utils import timezone

from consult import selectors
from consult.models import Case, Professional, User
from consult.services import messages as chat
from notices.models import Channel, NoticePreference
from realtime.events import background_settled
from realtime.models import OfflineNotice
from tests.realtime.conftest import Connect, frames_until_quiet, hello, room_path
from tests.realtime.conftest import say as say_only

pytestmark = pytest.mark.django_db(transaction=True)

DOCTOR_EMAIL = "wangfang@hospital.example"
ALICE_EMAIL = "alice@village.example"


@pytest.fixture
def with_emails(alice: User, doctor: Professional) -> None:
    alice.email = ALICE_EMAIL
    alice.save(update_fields=["email"])
    doctor.user.email = DOCTOR_EMAIL
    doctor.user.language = "en"
    doctor.user.save(update_fields=["email", "language"])
    for user in (alice, doctor.user):
        NoticePreference.objects.create(user=user, channel=Channel.EMAIL)


def to(address: str) -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if message.to == [address]]


async def say(comm: Any, body: str, client_id: str) -> dict[str, Any]:
    """Post a message, then wait for the offline notice the server works on after the ack."""
    ack = await say_only(comm, body, client_id)
    await background_settled()
    return ack


@database_sync_to_async
def move_last_notice_back(case: Case, user: User, minutes: int) -> None:
    OfflineNotice.objects.filter(case=case, user=user).update(sent_at=timezone.now() - timedelta(minutes=minutes))


@pytest.mark.asyncio
async def test_it_emails_an_absent_participant_once_per_quiet_period(
    connect: Connect, alice: User, doctor: Professional, case: Case, with_emails: None, mailoutbox: Any
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    for n in range(3):
        await say(mine, f"医生，第{n}条", f"quiet-{n}")

    notices = to(DOCTOR_EMAIL)
    assert len(notices) == 1
    assert notices[0].subject == f"New message on your case {case.reference}"  # in the doctor's language
    assert case.reference in notices[0].body
    assert to(ALICE_EMAIL) == []  # the sender is in the room

    await move_last_notice_back(case, doctor.user, minutes=29)  # still inside the 30 quiet minutes
    await say(mine, "还在等。", "quiet-3")
    assert len(to(DOCTOR_EMAIL)) == 1

    await move_last_notice_back(case, doctor.user, minutes=31)
    await say(mine, "过了半小时了。", "quiet-4")
    await say(mine, "再补充一句。", "quiet-5")
    assert len(to(DOCTOR_EMAIL)) == 2


@pytest.mark.asyncio
async def test_it_does_not_email_a_participant_who_is_in_the_room(
    connect: Connect, alice: User, doctor: Professional, case: Case, with_emails: None, mailoutbox: Any
) -> None:
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
    await say(mine, "医生您好", "here-1")
    await say(theirs, "您好，请讲。", "here-2")
    await say(mine, "咳嗽两周了。", "here-3")
    await frames_until_quiet(theirs)
    assert mailoutbox == []

    await theirs.disconnect()  # the doctor leaves: now they are told
    await say(mine, "您还在吗？", "here-4")
    assert len(to(DOCTOR_EMAIL)) == 1
    assert to(ALICE_EMAIL) == []


@pytest.mark.asyncio
async def test_it_sends_an_sms_to_a_participant_who_chose_no_email(
    connect: Connect, alice: User, doctor: Professional, case: Case, mailoutbox: Any, sms_outbox: list[Any]
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    await say(mine, "医生您好", "no-address")
    assert mailoutbox == []
    told = [sms.phone for sms in sms_outbox if sms.kind == "new_message"]
    assert told == [doctor.user.phone]


@pytest.mark.asyncio
async def test_it_does_not_email_again_for_a_retried_message(
    connect: Connect, alice: User, doctor: Professional, case: Case, with_emails: None, mailoutbox: Any
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    await say(mine, "医生您好", "retried")
    await move_last_notice_back(case, doctor.user, minutes=60)
    await say(mine, "医生您好", "retried")  # the same message sent again: nothing new to tell
    assert len(to(DOCTOR_EMAIL)) == 1


def test_it_emails_again_once_the_configured_quiet_period_has_passed(
    alice: User, doctor: Professional, case: Case, with_emails: None, mailoutbox: Any, settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.OFFLINE_NOTICE_QUIET_MINUTES = 5
    room_case = selectors.case_get_for_user(user=alice, reference=case.reference)
    start = timezone.now()

    def post_at(minutes: float, n: int) -> None:
        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(minutes=minutes))
        message, _created = chat.message_post(case=room_case, sender=alice, body=f"第{n}条", client_id=f"clock-{n}")
        chat.notify_offline(message=message)

    post_at(0, 0)
    post_at(2, 1)
    post_at(4.9, 2)
    assert len(to(DOCTOR_EMAIL)) == 1
    post_at(5.1, 3)  # 5 minutes after the first e-mail
    assert len(to(DOCTOR_EMAIL)) == 2
    post_at(9, 4)
    assert len(to(DOCTOR_EMAIL)) == 2
    post_at(10.2, 5)
    assert len(to(DOCTOR_EMAIL)) == 3
    assert to(ALICE_EMAIL) == []  # the sender is never told of their own message


@pytest.fixture
def away_checks(settings: Any) -> Iterator[list[int]]:
    """The away checks that ran (message ids), with a one-second delay and a fresh memory."""
    from realtime.consumers import away_checks as memory

    settings.OFFLINE_NOTICE_DELAY_SECONDS = 1
    memory.until.clear()
    ran: list[int] = []

    def record(sender: Any = None, task: Any = None, args: Any = (), **kwargs: Any) -> None:
        if task is not None and task.name == "realtime.tasks.notify_offline":
            ran.append(int(args[0]))

    task_prerun.connect(record, weak=False)
    yield ran
    task_prerun.disconnect(record)
    memory.until.clear()


@pytest.mark.asyncio
async def test_it_checks_who_is_away_once_for_a_burst_of_messages(
    connect: Connect, alice: User, doctor: Professional, case: Case, sms_outbox: list[Any], away_checks: list[int]
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    for n in range(6):
        await say(mine, f"第{n}条", f"burst-{n}")
    assert len(away_checks) == 1  # not one job per message
    assert [sms.phone for sms in sms_outbox if sms.kind == "new_message"] == [doctor.user.phone]

    theirs = await connect(doctor.user, room_path(case.reference))
    await hello(theirs)
    await say(theirs, "您好，请讲。", "other-sender")
    assert len(away_checks) == 2  # another sender has a window of their own

    await asyncio.sleep(1.1)  # the window is over: the next message is checked again
    await say(mine, "还在吗？", "after-window")
    assert len(away_checks) == 3
    assert len([sms for sms in sms_outbox if sms.kind == "new_message"]) == 1  # the doctor is in the room


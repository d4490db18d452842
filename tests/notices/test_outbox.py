"""The outbox: a notice is written with the change that causes it and sent after commit, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import transaction
from django.test import override_settings

from consult.models import User
from notices.kinds import NoticeKind
from notices.models import Channel, Notice, NoticePreference, NoticeStatus
from notices.services import MAX_ATTEMPTS, notice_deliver, notices_due, notify, quiet_hours_end
from notices.tasks import deliver, deliver_due
from tests.notices import flaky

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def code(phone: str = "13900000009", value: str = "123456") -> Notice:
    return notify(phone=phone, kind=NoticeKind.VERIFICATION_CODE, params={"code": value}, language="zh-hans")


def test_it_sends_a_code_once_after_the_transaction_commits(
    sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            notice = code()
            assert sms_outbox == []  # not before commit
    assert len(callbacks) == 1
    [sms] = sms_outbox
    assert (sms.phone, sms.kind, sms.params) == ("13900000009", "verification_code", {"code": "123456"})
    assert sms.text == "您的验证码是123456，5分钟内有效，请勿告诉他人。"
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.channel, notice.address) == ("sent", 1, "sms", "13900000009")
    assert notice.provider_message_id.startswith("locmem-") and notice.sent_at is not None
    assert notice.params == {"code": "******"}  # the outbox keeps no readable code once it is sent


def test_it_sends_nothing_when_the_transaction_rolls_back(
    sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            code()
            raise RuntimeError("the change failed")
    assert sms_outbox == []
    assert not Notice.objects.exists()


def test_a_second_delivery_of_the_same_notice_sends_nothing(sms_outbox: list[Any]) -> None:
    notice = code()  # not committed in this test: delivered by hand below
    assert deliver.apply(args=[notice.pk]).get() == "sent"
    assert deliver.apply(args=[notice.pk]).get() == "not due"
    assert len(sms_outbox) == 1
    notice.refresh_from_db()
    assert notice.attempts == 1


@override_settings(SMS_BACKEND="tests.notices.flaky.SmsBackend")
def test_a_provider_failing_twice_then_succeeding_gives_one_sent_notice_and_two_recorded_failures(
    sms_outbox: list[Any],
) -> None:
    flaky.failures_left, flaky.calls = 2, 0
    notice = code()
    assert deliver.apply(args=[notice.pk]).get() == "sent"
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert notice.attempts == 3
    assert [f["error"] for f in notice.failures] == ["provider timed out", "provider timed out"]
    assert notice.provider_message_id == "flaky-3"
    assert len(sms_outbox) == 1


@override_settings(SMS_BACKEND="tests.notices.flaky.SmsBackend")
def test_a_notice_that_keeps_failing_ends_failed_after_its_tries(sms_outbox: list[Any]) -> None:
    flaky.failures_left, flaky.calls = 100, 0
    notice = code()
    assert deliver.apply(args=[notice.pk]).get() == "failed"
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, len(notice.failures)) == ("failed", MAX_ATTEMPTS, MAX_ATTEMPTS)
    assert notice.error == "provider timed out"
    assert sms_outbox == [] and flaky.calls == MAX_ATTEMPTS


@pytest.fixture
def quiet_hours(settings: Any) -> None:
    settings.NOTICE_QUIET_START, settings.NOTICE_QUIET_END = 22, 7


@pytest.mark.usefixtures("quiet_hours")
def test_quiet_hours_run_from_22_to_7_local_time() -> None:
    assert quiet_hours_end(at(21, 59)) is None
    assert quiet_hours_end(at(22, 0)) == at(7, day=27)
    assert quiet_hours_end(at(3, 30)) == at(7)
    assert quiet_hours_end(at(7, 0)) is None


@pytest.mark.usefixtures("quiet_hours")
def test_quiet_hours_hold_a_non_urgent_sms_until_7_and_let_an_urgent_one_through(
    alice: User, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from unittest import mock

    from django.utils import timezone

    with mock.patch.object(timezone, "now", return_value=at(23, 15)):
        with django_capture_on_commit_callbacks(execute=True):
            held = notify(user=alice, kind=NoticeKind.NEW_MESSAGE, params={"case": "C-1", "link": "x"})
            urgent = code(phone=alice.phone)
        assert held.send_after == at(7, day=27)
        assert [m.kind for m in sms_outbox] == ["verification_code"]
        # The sweep at 6:59 leaves it; the one at 7:00 sends it.
        with mock.patch.object(timezone, "now", return_value=at(6, 59, day=27)):
            assert held.pk not in notices_due()
            deliver_due.apply()
        assert len(sms_outbox) == 1
    with mock.patch.object(timezone, "now", return_value=at(7, 0, day=27)):
        deliver_due.apply()
    assert [m.kind for m in sms_outbox] == ["verification_code", "new_message"]
    held.refresh_from_db()
    urgent.refresh_from_db()
    assert (held.status, urgent.status) == ("sent", "sent")


def test_an_opted_out_resident_gets_no_notices_but_the_codes_they_ask_for(
    alice: User, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    NoticePreference.objects.create(user=alice, opted_out=True)
    with django_capture_on_commit_callbacks(execute=True):
        skipped = notify(user=alice, kind=NoticeKind.NEW_MESSAGE, params={"case": "C-1", "link": "x"}, urgent=True)
        wanted = notify(user=alice, kind=NoticeKind.VERIFICATION_CODE, params={"code": "222333"})
    assert skipped.status == NoticeStatus.SKIPPED and "opted out" in skipped.error
    assert [m.params for m in sms_outbox] == [{"code": "222333"}]
    wanted.refresh_from_db()
    assert wanted.status == NoticeStatus.SENT


def test_a_resident_who_chose_email_gets_an_email_in_their_language(
    alice: User, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    alice.email, alice.language = "alice@example.com", "en"
    alice.save()
    NoticePreference.objects.create(user=alice, channel=Channel.EMAIL)
    with django_capture_on_commit_callbacks(execute=True):
        notice = notify(user=alice, kind=NoticeKind.NEW_MESSAGE, params={"case": "C-1", "link": "https://x/n/1/"})
    assert sms_outbox == []
    [email] = mail.outbox
    assert email.to == ["alice@example.com"]
    assert "You have a new message on case C-1: https://x/n/1/" in email.body
    assert email.subject == "New message on your case C-1"
    notice.refresh_from_db()
    assert (notice.channel, notice.status, notice.language) == ("email", "sent", "en")


def test_a_notice_whose_job_was_lost_is_sent_by_the_sweep(sms_outbox: list[Any]) -> None:
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    notice = code()  # committed with no job (the broker was down)
    assert notices_due() == []  # its own job may still come
    later = timezone.now() + timedelta(minutes=2)
    with mock.patch.object(timezone, "now", return_value=later):
        assert deliver_due.apply().get() == 1
    assert len(sms_outbox) == 1
    notice.refresh_from_db()
    assert notice.status == "sent"


def test_a_notice_claimed_by_another_worker_is_left_to_it(sms_outbox: list[Any]) -> None:
    from datetime import timedelta

    notice = code()
    Notice.objects.filter(pk=notice.pk).update(status=NoticeStatus.SENDING)  # another worker has it
    assert notice_deliver(notice_id=notice.pk, retry_wait=timedelta(0)) == "not due"
    assert sms_outbox == []


def test_it_refuses_a_notice_missing_a_parameter() -> None:
    with pytest.raises(ValueError, match="code"):
        notify(phone="13900000009", kind=NoticeKind.VERIFICATION_CODE, params={})

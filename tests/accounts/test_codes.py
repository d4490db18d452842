"""One-time codes: how they are made, kept, checked and limited (the services every page and API
call goes through)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection
from django.utils import timezone, translation

from accounts import services
from accounts.models import CodeQuota, PhoneCode, Purpose
from accounts.services import DAILY_CODES as DAILY
from accounts.services import CodeLimit, CodeRefused
from consult.models import Professional, User
from tests.accounts.conftest import snapshot
from tests.sms import Sms

NEW = "13900001111"
ADDRESS = "10.0.0.1"


def send(phone: str = NEW, purpose: str = Purpose.SIGNUP, address: str = ADDRESS, **extra: Any) -> services.CodeSent:
    return services.code_send(phone=phone, purpose=purpose, client_address=address, language="zh-hans", **extra)


def signup(code: str, phone: str = NEW) -> tuple[User, bool]:
    return services.signup_with_code(phone=phone, code=code, name="赵大妈", password_hash="", language="zh-hans")


def age_codes(phone: str, by: timedelta) -> None:
    for row in PhoneCode.objects.filter(phone=phone):
        PhoneCode.objects.filter(pk=row.pk).update(created_at=row.created_at - by, expires_at=row.expires_at - by)


def age_quota(phone: str, by: timedelta) -> None:
    quota = CodeQuota.objects.get(scope=f"phone:{phone}")
    assert quota.last_sent_at is not None
    CodeQuota.objects.filter(pk=quota.pk).update(last_sent_at=quota.last_sent_at - by)


def test_it_sends_six_random_digits_and_keeps_only_their_hash(db: Any, sms: Sms) -> None:
    send()
    code = sms.last(NEW)

    assert len(code) == 6 and code.isdigit()
    [message] = sms.messages(NEW)
    assert code in message.text and "验证码" in message.text  # the SMS, in the page's language
    row = PhoneCode.objects.get(phone=NEW)
    assert code not in row.code_hash
    assert row.code_hash.startswith("md5$")  # the configured hasher (the tests' fast one)
    assert check_password(code, row.code_hash)
    assert (row.purpose, row.client_address, row.tries, row.used_at) == (Purpose.SIGNUP, ADDRESS, 0, None)
    assert row.expires_at - row.created_at == timedelta(minutes=5)


def test_it_checks_a_code_typed_with_full_width_digits_and_spaces(db: Any, sms: Sms) -> None:
    send()
    code = sms.last(NEW)
    typed = " ".join(chr(ord(d) + 0xFEE0) for d in code)  # "１ ２ ３ ..." from a Chinese keyboard

    user, created = signup(typed)

    assert created and user.phone == NEW


def test_it_creates_the_account_only_once_the_code_checks(db: Any, sms: Sms) -> None:
    send()
    assert not User.objects.filter(phone=NEW).exists()

    user, created = signup(sms.last(NEW))

    assert created and user.is_resident and not user.has_usable_password()
    assert PhoneCode.objects.get(phone=NEW).used_at is not None
    with pytest.raises(CodeRefused) as again:
        signup(sms.last(NEW))
    assert again.value.code == "no_code"


def test_it_counts_wrong_tries_and_refuses_the_right_code_after_five(db: Any, sms: Sms) -> None:
    send()
    right = sms.last(NEW)
    wrong = "000000" if right != "000000" else "111111"
    lefts = []
    for _ in range(5):
        with pytest.raises(CodeRefused) as refused:
            signup(wrong)
        lefts.append(refused.value.code)

    assert lefts == ["wrong_code"] * 4 + ["too_many_tries"]
    with pytest.raises(CodeRefused) as late:
        signup(right)
    assert late.value.code == "too_many_tries"
    assert PhoneCode.objects.get(phone=NEW).tries == 5
    assert not User.objects.filter(phone=NEW).exists()


def test_it_says_how_many_tries_are_left_in_chinese(db: Any, sms: Sms) -> None:
    send()
    wrong = "000000" if sms.last(NEW) != "000000" else "111111"

    with translation.override("zh-hans"), pytest.raises(CodeRefused) as refused:
        signup(wrong)

    assert refused.value.messages == ["验证码不对。您还可以再试 4 次。"]


def test_it_refuses_an_expired_code(db: Any, sms: Sms) -> None:
    send()
    age_codes(NEW, timedelta(minutes=5, seconds=1))
    before = snapshot()

    with pytest.raises(CodeRefused) as refused:
        signup(sms.last(NEW))

    assert refused.value.code == "expired"
    assert snapshot() == before


def test_it_checks_only_the_newest_code(db: Any, sms: Sms) -> None:
    send()
    first = sms.last(NEW)
    age_quota(NEW, timedelta(seconds=60))
    send()
    newest = sms.last(NEW)
    if first == newest:
        pytest.skip("the two random codes happen to be equal")

    with pytest.raises(CodeRefused):
        signup(first)
    user, _created = signup(newest)

    assert user.phone == NEW


def test_it_refuses_a_new_code_within_a_minute_and_says_how_long_to_wait(db: Any, sms: Sms) -> None:
    send()
    before = snapshot()

    with translation.override("zh-hans"), pytest.raises(CodeLimit) as refused:
        send()

    assert refused.value.code == "too_soon"
    assert 55 <= refused.value.retry_after <= 60
    assert f"{refused.value.retry_after} 秒" in refused.value.messages[0]
    assert snapshot() == before
    assert len(sms.codes(NEW)) == 1
    age_quota(NEW, timedelta(seconds=60))
    send()
    assert len(sms.codes(NEW)) == 2


def test_it_sends_a_number_at_most_ten_codes_a_day_whatever_the_address(db: Any, sms: Sms) -> None:
    for n in range(10):
        send(address=f"10.0.1.{n}")
        age_quota(NEW, timedelta(seconds=60))
    before = snapshot()

    with pytest.raises(CodeLimit) as refused:
        send(address="10.0.2.1")

    assert refused.value.code == "daily_limit"
    assert snapshot() == before
    assert len(sms.codes(NEW)) == 10
    # Tomorrow (the local day) counts afresh.
    CodeQuota.objects.update(day=timezone.localdate() - timedelta(days=1))
    send(address="10.0.2.1")
    assert len(sms.codes(NEW)) == 11


def test_it_sends_at_most_ten_codes_a_day_from_one_address_whatever_the_number(db: Any, sms: Sms) -> None:
    for n in range(10):
        send(phone=f"1390000{n:04d}")
    before = snapshot()

    with pytest.raises(CodeLimit) as refused:
        send(phone="13900009999")

    assert refused.value.code == "daily_limit_address"
    assert snapshot() == before
    assert sms.codes("13900009999") == []
    # The refusal did not count against the number either.
    send(phone="13900009999", address="10.0.0.2")
    assert len(sms.codes("13900009999")) == 1


def test_it_refuses_code_login_and_reset_to_staff_and_sends_nothing(
    db: Any, sms: Sms, doctor: Professional, coordinator: User
) -> None:
    for user in (doctor.user, coordinator):
        for purpose in (Purpose.LOGIN, Purpose.RESET):
            with pytest.raises(CodeRefused) as refused:
                send(phone=user.phone, purpose=purpose)
            assert refused.value.code == "staff_password_only"
        assert sms.codes(user.phone) == []
    assert not PhoneCode.objects.exists()
    assert not CodeQuota.objects.exists()


@pytest.mark.parametrize("purpose", [Purpose.LOGIN, Purpose.RESET])
def test_it_answers_a_number_without_an_account_as_any_other_but_sends_it_nothing(
    purpose: str, alice: User, sms: Sms
) -> None:
    known = send(phone=alice.phone, purpose=purpose)
    unknown = send(phone=NEW, purpose=purpose)

    assert (known.resend_after, known.expires_in) == (unknown.resend_after, unknown.expires_in)
    assert len(sms.codes(alice.phone)) == 1
    assert sms.codes(NEW) == []
    # Its row takes tries and limits the same way.
    with pytest.raises(CodeRefused) as refused:
        if purpose == Purpose.LOGIN:
            services.login_with_code(phone=NEW, code="123456")
        else:
            services.password_reset_with_code(phone=NEW, code="123456", password="a-New-pass-42")
    assert refused.value.code == "wrong_code"
    assert PhoneCode.objects.get(phone=NEW).tries == 1
    with pytest.raises(CodeLimit):
        send(phone=NEW, purpose=purpose)


def test_it_sends_a_taken_number_a_code_at_signup_and_gives_its_owner_the_account_unchanged(
    alice: User, sms: Sms
) -> None:
    send(phone=alice.phone)
    password = alice.password

    user, created = services.signup_with_code(
        phone=alice.phone, code=sms.last(alice.phone), name="冒名者", password_hash="", language="en"
    )

    assert (user, created) == (alice, False)
    alice.refresh_from_db()
    assert (alice.name, alice.password, alice.language) == ("王秀英", password, "zh-hans")
    assert User.objects.filter(phone=alice.phone).count() == 1


def test_it_sends_the_code_in_the_account_language_or_else_the_page_language(alice: User, sms: Sms) -> None:
    User.objects.filter(pk=alice.pk).update(language="en")
    services.code_send(phone=alice.phone, purpose=Purpose.LOGIN, client_address=ADDRESS, language="zh-hans")
    services.code_send(phone=NEW, purpose=Purpose.SIGNUP, client_address=ADDRESS, language="en")

    assert sms.languages(alice.phone) == ["en"]
    assert sms.languages(NEW) == ["en"]


def test_it_changes_a_number_only_with_the_code_sent_to_the_new_one(alice: User, bob: User, sms: Sms) -> None:
    send(purpose=Purpose.CHANGE_PHONE, user=alice)
    code = sms.last(NEW)

    # Bob cannot use the code Alice asked for.
    with pytest.raises(CodeRefused):
        services.phone_change_with_code(user=bob, phone=NEW, code=code)
    services.phone_change_with_code(user=alice, phone=NEW, code=code)

    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.phone, bob.phone) == (NEW, "13800000002")


def test_it_refuses_a_taken_new_number_only_once_its_code_checks(alice: User, bob: User, sms: Sms) -> None:
    send(phone=bob.phone, purpose=Purpose.CHANGE_PHONE, user=alice)  # no error: nothing is revealed yet
    before = snapshot()

    with pytest.raises(CodeRefused) as refused:
        services.phone_change_with_code(user=alice, phone=bob.phone, code=sms.last(bob.phone))

    assert refused.value.code == "phone_taken"
    assert snapshot() == before  # not even the code is used up
    with pytest.raises(CodeRefused) as same:
        send(phone=alice.phone, purpose=Purpose.CHANGE_PHONE, user=alice)
    assert same.value.code == "same_phone"


def test_it_forgets_old_codes_and_past_days_counts(db: Any, sms: Sms) -> None:
    send()
    send(phone="13900002222")
    age_codes(NEW, timedelta(days=3))
    CodeQuota.objects.filter(scope=f"phone:{NEW}").update(day=timezone.localdate() - timedelta(days=3))

    assert services.codes_purge() == 2

    assert list(PhoneCode.objects.values_list("phone", flat=True)) == ["13900002222"]
    assert not CodeQuota.objects.filter(scope=f"phone:{NEW}").exists()


@pytest.mark.django_db(transaction=True)
def test_it_never_lets_two_requests_at_once_both_take_the_last_code_of_the_day(sms_outbox: list[Any]) -> None:
    for n in range(DAILY - 1):
        send(phone=f"1390000{n:04d}")
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def one(n: int) -> None:
        start.wait()
        try:
            send(phone=f"1391111{n:04d}")
            outcomes.append("sent")
        except CodeLimit as refused:
            outcomes.append(refused.code or "")
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["daily_limit_address"] * 5 + ["sent"]
    assert CodeQuota.objects.get(scope=f"address:{ADDRESS}").sent == DAILY
    assert PhoneCode.objects.filter(phone__startswith="1391111").count() == 1

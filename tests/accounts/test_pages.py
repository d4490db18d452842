"""The phone pages, as a resident on her phone uses them (in Chinese): sign up with a code, log in
with a code, reset a forgotten password, change the number. Every refusal says why in Chinese and
changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import CodeQuota, PhoneCode
from consult.models import Professional, User
from tests.accounts.conftest import snapshot, text_of, zh, zh_plural
from tests.conftest import PASSWORD
from tests.sms import Sms

NEW = "13900001111"
NEW_PASSWORD = "Qingshan-village-2026"

SIGNUP_CODE = reverse("accounts:signup_code")
LOGIN_CODE = reverse("accounts:login_code")
RESET = reverse("accounts:reset")
RESET_CODE = reverse("accounts:reset_code")
PHONE = reverse("accounts:phone")
PHONE_CODE = reverse("accounts:phone_code")

SENT = "A 6-digit code is on its way to %(phone)s by SMS. It is valid for 5 minutes."
SENT_IF = "If %(phone)s has an account, a 6-digit code is on its way to it by SMS. It is valid for 5 minutes."
WRONG = (
    "This code is not right. You can try %(left)d more time.",
    "This code is not right. You can try %(left)d more times.",
)


def shape(response: Any, masked: str) -> str:
    """The page without what differs by nature: the number shown, the CSRF token."""
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text_of(response).replace(masked, "X"))


def signed_in(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def start_signup(client: Client, phone: str = NEW, **extra: str) -> Any:
    return client.post(reverse("signup"), {"name": "赵大妈", "phone": phone, "password": "", **extra})


def expire_codes() -> None:
    PhoneCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


# --- sign-up -----------------------------------------------------------------------------


def test_it_signs_a_resident_up_once_the_code_from_the_sms_checks(
    db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    start = start_signup(client, "+86 139-0000-1111", next="/services/respiratory/new/")

    assert start.status_code == 302
    assert start["Location"] == f"{SIGNUP_CODE}?next=%2Fservices%2Frespiratory%2Fnew%2F"
    assert not User.objects.filter(phone=NEW).exists()
    page = client.get(start["Location"])
    assert zh(SENT, phone="139****1111") in text_of(page)
    assert 'autocomplete="one-time-code"' in page.content.decode()

    done = client.post(start["Location"], {"code": sms.last(NEW)})

    assert done.status_code == 302 and done["Location"] == "/services/respiratory/new/"
    user = User.objects.get(phone=NEW)
    assert (user.name, user.is_resident, user.language) == ("赵大妈", True, "zh-hans")
    assert not user.has_usable_password()
    assert signed_in(client) == str(user.pk)
    assert zh("Welcome! Your account is ready.") in text_of(client.get(reverse("home")))


def test_it_keeps_the_password_given_at_signup_hashed_and_never_in_the_session(
    db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    start_signup(client, password=NEW_PASSWORD)
    assert NEW_PASSWORD not in str(dict(client.session))

    client.post(SIGNUP_CODE, {"code": sms.last(NEW)})

    assert User.objects.get(phone=NEW).check_password(NEW_PASSWORD)


def test_it_refuses_a_weak_password_before_sending_any_code(db: Any, sms: Sms, browser: Callable[..., Client]) -> None:
    response = start_signup(browser(), password="password")

    assert response.status_code == 200
    assert "这个密码太常见了。" in text_of(response)
    assert sms.codes(NEW) == [] and not PhoneCode.objects.exists()


def test_it_refuses_a_bad_number_in_chinese(db: Any, sms: Sms, browser: Callable[..., Client]) -> None:
    response = start_signup(browser(), "12345")

    assert zh("Enter an 11-digit mobile phone number starting with 1.") in text_of(response)
    assert not PhoneCode.objects.exists()


def test_it_answers_a_taken_number_at_signup_like_any_other_and_only_its_owner_learns_more(
    alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    stranger, fresh = browser(), browser(address="10.0.0.2")
    taken = start_signup(stranger, alice.phone)
    free = start_signup(fresh, NEW)

    # The same answer, the same page: nothing says the number has an account.
    assert taken.status_code == free.status_code == 302
    assert taken["Location"] == free["Location"]
    assert shape(stranger.get(SIGNUP_CODE), "138****0001") == shape(fresh.get(SIGNUP_CODE), "139****1111")
    # The stranger does not have the owner's SMS: every guess fails and changes nothing else.
    before = snapshot()
    guess = stranger.post(SIGNUP_CODE, {"code": wrong(sms.last(alice.phone))})
    assert zh_plural(*WRONG, 4, left=4) in text_of(guess)
    assert signed_in(stranger) is None
    assert snapshot()["users"] == before["users"]

    # The owner, who has the SMS, is let into her own account, unchanged.
    owner = browser(address="10.0.0.3")
    CodeQuota.objects.update(last_sent_at=None)  # a minute later
    start_signup(owner, alice.phone, name="别的名字", password=NEW_PASSWORD)
    done = owner.post(SIGNUP_CODE, {"code": sms.last(alice.phone)}, follow=True)
    assert signed_in(owner) == str(alice.pk)
    assert zh("This number already had an account: you are now logged in to it. Nothing was changed.") in text_of(done)
    alice.refresh_from_db()
    assert alice.name == "王秀英" and alice.check_password(PASSWORD)
    assert User.objects.filter(phone=alice.phone).count() == 1


def test_it_refuses_a_taken_staff_number_at_signup_once_the_code_checks(
    doctor: Professional, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    start_signup(client, doctor.user.phone)
    before = snapshot()

    response = client.post(SIGNUP_CODE, {"code": sms.last(doctor.user.phone)})

    assert zh("This number already has an account. Please log in with your password.") in text_of(response)
    assert signed_in(client) is None
    assert snapshot() == before


@pytest.mark.parametrize("bad", ["wrong", "expired", "too many tries", "not six digits", "no code asked"])
def test_it_refuses_a_bad_code_at_signup_in_chinese_and_creates_nothing(
    bad: str, db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    if bad == "no code asked":
        assert client.get(SIGNUP_CODE)["Location"] == reverse("signup")
        return
    start_signup(client)
    code = sms.last(NEW)
    typed, message = {
        "wrong": (wrong(code), zh_plural(*WRONG, 4, left=4)),
        "expired": (code, zh("This code has expired: a code lasts 5 minutes. Please ask for a new code.")),
        "too many tries": (code, zh("Too many wrong tries for this code. Please ask for a new code.")),
        "not six digits": ("12345", zh("Write the 6 digits of the code from the SMS.")),
    }[bad]
    if bad == "expired":
        expire_codes()
    if bad == "too many tries":
        for _ in range(5):
            client.post(SIGNUP_CODE, {"code": wrong(code)})
    before = snapshot()

    response = client.post(SIGNUP_CODE, {"code": typed})

    assert response.status_code == 200
    assert message in text_of(response)
    assert not User.objects.filter(phone=NEW).exists()
    assert signed_in(client) is None
    after = snapshot()
    if bad == "wrong":  # the try is counted, and that is all
        assert [t for _pk, t, _u in after["codes"]] == [t + 1 for _pk, t, _u in before["codes"]]
        after["codes"] = before["codes"]
    assert after == before


def test_it_resends_a_code_no_sooner_than_a_minute_and_says_so_in_chinese(
    db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    start_signup(client)

    again = client.post(SIGNUP_CODE, {"resend": "1"}, follow=True)

    assert zh("A code was sent a moment ago. You can ask for another in %(seconds)d seconds.", seconds=60) in text_of(
        again
    )
    assert len(sms.codes(NEW)) == 1
    CodeQuota.objects.update(last_sent_at=timezone.now() - timedelta(seconds=60))
    resent = client.post(SIGNUP_CODE, {"resend": "1"}, follow=True)
    assert zh("A new code is on its way.") in text_of(resent)
    assert len(sms.codes(NEW)) == 2


@pytest.mark.parametrize("scope", ["number", "address"])
def test_it_refuses_an_eleventh_code_a_day_with_a_429_in_chinese(
    scope: str, db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    for n in range(10):
        CodeQuota.objects.update(last_sent_at=None)
        if scope == "number":
            start_signup(browser(address=f"10.0.1.{n}"))
        else:
            start_signup(browser(), f"1390000{n:04d}")
    CodeQuota.objects.update(last_sent_at=None)
    before = snapshot()

    response = start_signup(browser(address="10.0.2.1") if scope == "number" else browser(), "13900009999"
                            if scope == "address" else NEW)

    assert response.status_code == 429
    message = {
        "number": "This number has had 10 codes today, the most we send in a day. Please try again tomorrow.",
        "address": "Too many codes were asked for from this network today. Please try again tomorrow.",
    }[scope]
    assert zh(message) in text_of(response)
    assert snapshot() == before


# --- log-in with a code ------------------------------------------------------------------


def test_it_shows_the_code_first_on_the_login_page_and_the_password_as_the_other_way(
    db: Any, browser: Callable[..., Client]
) -> None:
    page = browser().get(reverse("login")).content.decode()

    assert page.index(zh("Send me a code")) < page.index('name="password"')
    assert zh("Log in with my password") in page
    assert f'href="{RESET}"' in page


def test_it_logs_a_resident_in_with_a_code(alice: User, sms: Sms, browser: Callable[..., Client]) -> None:
    client = browser()
    start = client.post(reverse("login"), {"phone": "138 0000 0001", "next": "/cases/"})
    assert start.status_code == 302 and start["Location"] == f"{LOGIN_CODE}?next=%2Fcases%2F"
    assert zh(SENT_IF, phone="138****0001") in text_of(client.get(start["Location"]))

    done = client.post(start["Location"], {"code": sms.last(alice.phone)})

    assert done.status_code == 302 and done["Location"] == "/cases/"
    assert signed_in(client) == str(alice.pk)


def test_it_still_logs_in_with_a_password_on_the_same_page(alice: User, browser: Callable[..., Client]) -> None:
    client = browser()

    response = client.post(reverse("login"), {"username": alice.phone, "password": PASSWORD})

    assert response.status_code == 302
    assert signed_in(client) == str(alice.pk)


def test_it_refuses_staff_a_code_login_with_a_clear_message_and_sends_nothing(
    doctor: Professional, coordinator: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    for user in (doctor.user, coordinator):
        client = browser()
        response = client.post(reverse("login"), {"phone": user.phone})

        assert response.status_code == 200
        assert zh("Doctors, lawyers and coordinators log in with their password.") in text_of(response)
        assert sms.codes(user.phone) == []
        assert signed_in(client) is None
    assert not PhoneCode.objects.exists()


def test_it_answers_a_login_for_an_unknown_number_as_for_a_known_one(
    alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    known, unknown = browser(), browser(address="10.0.0.2")
    a = known.post(reverse("login"), {"phone": alice.phone})
    b = unknown.post(reverse("login"), {"phone": NEW})

    assert a["Location"] == b["Location"] == LOGIN_CODE
    assert shape(known.get(LOGIN_CODE), "138****0001") == shape(unknown.get(LOGIN_CODE), "139****1111")
    assert sms.codes(NEW) == []
    guess = unknown.post(LOGIN_CODE, {"code": "123456"})
    assert zh_plural(*WRONG, 4, left=4) in text_of(guess)
    assert signed_in(unknown) is None


def test_it_refuses_a_wrong_login_code_in_chinese(alice: User, sms: Sms, browser: Callable[..., Client]) -> None:
    client = browser()
    client.post(reverse("login"), {"phone": alice.phone})

    response = client.post(LOGIN_CODE, {"code": wrong(sms.last(alice.phone))})

    assert zh_plural(*WRONG, 4, left=4) in text_of(response)
    assert signed_in(client) is None


# --- a forgotten password ----------------------------------------------------------------


def test_it_resets_a_forgotten_password_with_a_code(alice: User, sms: Sms, browser: Callable[..., Client]) -> None:
    old_device = browser()
    old_device.force_login(alice)
    client = browser()
    assert client.post(RESET, {"phone": alice.phone})["Location"] == RESET_CODE

    done = client.post(
        RESET_CODE, {"code": sms.last(alice.phone), "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        follow=True,
    )

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert signed_in(client) == str(alice.pk)
    assert zh("Your new password is saved and you are logged in.") in text_of(done)
    # A device logged in with the old password is logged out.
    assert old_device.get(reverse("my_cases")).status_code == 302


@pytest.mark.parametrize("bad", ["wrong code", "passwords differ", "weak password"])
def test_it_refuses_a_bad_reset_in_chinese_and_keeps_the_old_password(
    bad: str, alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    client.post(RESET, {"phone": alice.phone})
    code = sms.last(alice.phone)
    data, message = {
        "wrong code": ({"code": wrong(code)}, zh_plural(*WRONG, 4, left=4)),
        "passwords differ": ({"password_again": "Another-pass-99"}, zh("The two passwords are not the same.")),
        "weak password": ({"password": "password", "password_again": "password"}, "这个密码太常见了。"),
    }[bad]

    response = client.post(RESET_CODE, {"code": code, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD, **data})

    assert message in text_of(response)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert signed_in(client) is None


def test_it_refuses_staff_a_reset_by_code(doctor: Professional, sms: Sms, browser: Callable[..., Client]) -> None:
    response = browser().post(RESET, {"phone": doctor.user.phone})

    assert zh("Doctors, lawyers and coordinators: please ask a coordinator to reset your password.") in text_of(
        response
    )
    assert sms.codes(doctor.user.phone) == []


# --- a new number ------------------------------------------------------------------------


def test_it_changes_the_number_once_the_code_sent_to_the_new_one_checks(
    alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    client.force_login(alice)
    page = client.get(PHONE)
    assert zh("Your phone number: %(phone)s", phone="138****0001") in text_of(page)

    assert client.post(PHONE, {"phone": NEW})["Location"] == PHONE_CODE
    assert sms.codes(alice.phone) == []
    done = client.post(PHONE_CODE, {"code": sms.last(NEW)}, follow=True)

    alice.refresh_from_db()
    assert alice.phone == NEW
    assert zh("Your phone number is now %(phone)s. Log in with it from now on.", phone=NEW) in text_of(done)
    assert browser().post(reverse("login"), {"username": NEW, "password": PASSWORD}).status_code == 302


def test_it_refuses_a_number_taken_by_another_account_once_its_code_checks(
    alice: User, bob: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    client.force_login(alice)
    assert client.post(PHONE, {"phone": bob.phone})["Location"] == PHONE_CODE
    before = snapshot()

    response = client.post(PHONE_CODE, {"code": sms.last(bob.phone)})

    assert zh("This number already has another account. Your number was not changed.") in text_of(response)
    assert snapshot() == before


def test_it_refuses_the_same_number_and_a_wrong_code_in_chinese(
    alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    client.force_login(alice)
    same = client.post(PHONE, {"phone": alice.phone})
    assert zh("This is already your phone number.") in text_of(same)

    client.post(PHONE, {"phone": NEW})
    response = client.post(PHONE_CODE, {"code": wrong(sms.last(NEW))})

    assert zh_plural(*WRONG, 4, left=4) in text_of(response)
    alice.refresh_from_db()
    assert alice.phone == "13800000001"


def test_it_sends_anonymous_visitors_of_the_number_page_to_log_in(db: Any, browser: Callable[..., Client]) -> None:
    for url in (PHONE, PHONE_CODE):
        response = browser().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_lets_an_account_without_a_password_set_one_without_an_old_one(
    db: Any, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    start_signup(client)
    client.post(SIGNUP_CODE, {"code": sms.last(NEW)})

    page = client.get(reverse("password_change"))
    assert 'name="old_password"' not in page.content.decode()
    done = client.post(reverse("password_change"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert User.objects.get(phone=NEW).check_password(NEW_PASSWORD)

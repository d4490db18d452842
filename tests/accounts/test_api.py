"""The phone flows through the API, as a mobile or mini-program client uses them: ask for a code,
trade it for a token or a new number. Refusals come in the API's error shape, in the request's
language, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts import services
from accounts.models import CodeQuota, PhoneCode, Purpose
from consult.models import Professional, User
from tests.accounts.conftest import snapshot, zh, zh_plural
from tests.conftest import PASSWORD
from tests.sms import Sms

API = "/api/v1/auth/"
NEW = "13900001111"
NEW_PASSWORD = "Qingshan-village-2026"
WRONG = (
    "This code is not right. You can try %(left)d more time.",
    "This code is not right. You can try %(left)d more times.",
)


@pytest.fixture
def api() -> APIClient:
    return APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR="10.0.0.1")


def ask(api: APIClient, phone: str, purpose: str) -> Any:
    return api.post(f"{API}code/", {"phone": phone, "purpose": purpose}, format="json")


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def error(response: Any) -> tuple[str, str]:
    body = response.json()["error"]
    return body["code"], body["message"]


def test_it_signs_up_with_a_code_and_answers_a_token(api: APIClient, db: Any, sms: Sms) -> None:
    sent = ask(api, "+86 139 0000 1111", "signup")
    assert sent.status_code == 202
    assert sent.json() == {"sent_to": "139****1111", "resend_after": 60, "expires_in": 300}

    response = api.post(f"{API}signup/", {"name": "赵大妈", "phone": NEW, "code": sms.last(NEW)}, format="json")

    assert response.status_code == 201
    user = User.objects.get(phone=NEW)
    assert response.json()["user"] == {"name": "赵大妈", "role": "resident", "phone": NEW}
    assert AuthToken.objects.filter(user=user).count() == 1
    me = APIClient(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert me.get("/api/v1/cases/").status_code == 200


def test_it_gives_the_owner_of_a_taken_number_her_own_account_unchanged(api: APIClient, alice: User, sms: Sms) -> None:
    ask(api, alice.phone, "signup")

    response = api.post(
        f"{API}signup/", {"name": "冒名者", "phone": alice.phone, "code": sms.last(alice.phone), "password": ""},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["user"]["name"] == "王秀英"
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize("bad", ["wrong", "expired", "too many tries", "malformed"])
def test_it_refuses_a_bad_signup_code_in_chinese_and_creates_nothing(
    bad: str, api: APIClient, db: Any, sms: Sms
) -> None:
    ask(api, NEW, "signup")
    code = sms.last(NEW)
    if bad == "expired":
        PhoneCode.objects.update(expires_at=PhoneCode.objects.get().created_at)
    if bad == "too many tries":
        for _ in range(5):
            api.post(f"{API}signup/", {"name": "赵大妈", "phone": NEW, "code": wrong(code)}, format="json")
    typed = {"wrong": wrong(code), "malformed": "12a456"}.get(bad, code)
    before = snapshot()

    response = api.post(f"{API}signup/", {"name": "赵大妈", "phone": NEW, "code": typed}, format="json")

    # A code that is not 6 digits is malformed (400); a well-formed one that does not check grants
    # nothing (403).
    assert response.status_code == (400 if bad == "malformed" else 403)
    expected = {
        "wrong": ("wrong_code", zh_plural(*WRONG, 4, left=4)),
        "expired": ("expired", zh("This code has expired: a code lasts 5 minutes. Please ask for a new code.")),
        "too many tries": ("too_many_tries", zh("Too many wrong tries for this code. Please ask for a new code.")),
        "malformed": ("invalid", zh("Please check the highlighted fields.")),
    }[bad]
    assert error(response) == expected
    if bad == "malformed":
        assert response.json()["error"]["fields"]["code"] == [zh("Write the 6 digits of the code from the SMS.")]
    assert not User.objects.filter(phone=NEW).exists()
    after = snapshot()
    if bad == "wrong":
        after["codes"] = [(pk, tries - 1, used) for pk, tries, used in after["codes"]]
    assert after == before


def test_it_logs_a_resident_in_with_a_code(api: APIClient, alice: User, sms: Sms) -> None:
    assert ask(api, alice.phone, "login").status_code == 202

    response = api.post(f"{API}code/token/", {"phone": alice.phone, "code": sms.last(alice.phone)}, format="json")

    assert response.status_code == 200
    assert AuthToken.objects.filter(user=alice).count() == 1
    wrong_again = api.post(f"{API}code/token/", {"phone": alice.phone, "code": sms.last(alice.phone)}, format="json")
    assert error(wrong_again) == ("no_code", zh("No code is waiting for this number. Please ask for a new code."))


def test_it_refuses_staff_a_code_login(api: APIClient, doctor: Professional, sms: Sms) -> None:
    response = ask(api, doctor.user.phone, "login")

    assert response.status_code == 403
    assert error(response) == (
        "staff_password_only", zh("Doctors, lawyers and coordinators log in with their password.")
    )
    assert sms.codes(doctor.user.phone) == []


def test_it_answers_a_login_code_for_an_unknown_number_as_for_a_known_one(
    api: APIClient, alice: User, sms: Sms
) -> None:
    known = ask(api, alice.phone, "login")
    unknown = ask(api, NEW, "login")

    assert (known.status_code, unknown.status_code) == (202, 202)
    assert {k: v for k, v in known.json().items() if k != "sent_to"} == {
        k: v for k, v in unknown.json().items() if k != "sent_to"
    }
    assert sms.codes(NEW) == []


def test_it_refuses_a_code_too_soon_and_an_eleventh_a_day_with_429_and_retry_after(
    api: APIClient, db: Any, sms: Sms
) -> None:
    ask(api, NEW, "signup")
    before = snapshot()
    soon = ask(api, NEW, "signup")
    assert soon.status_code == 429
    assert soon["Retry-After"] in {str(n) for n in range(55, 61)}
    assert error(soon)[0] == "too_soon"
    assert snapshot() == before

    for n in range(9):
        ask(api, f"1390000{n:04d}", "signup")
    before = snapshot()
    daily = ask(api, "13900009999", "signup")
    assert daily.status_code == 429
    assert error(daily) == (
        "daily_limit_address", zh("Too many codes were asked for from this network today. Please try again tomorrow.")
    )
    assert int(daily["Retry-After"]) > 0
    assert snapshot() == before


def test_it_resets_a_password_with_a_code(api: APIClient, alice: User, sms: Sms) -> None:
    ask(api, alice.phone, "reset")

    weak = api.post(
        f"{API}password/reset/", {"phone": alice.phone, "code": sms.last(alice.phone), "password": "password"},
        format="json",
    )
    assert weak.status_code == 400 and weak.json()["error"]["fields"]["password"] == ["这个密码太常见了。"]
    response = api.post(
        f"{API}password/reset/", {"phone": alice.phone, "code": sms.last(alice.phone), "password": NEW_PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_it_changes_the_number_of_the_token_holder(api: APIClient, alice: User, bob: User, sms: Sms) -> None:
    anonymous = ask(api, NEW, "change_phone")
    assert anonymous.status_code == 401
    _instance, token = AuthToken.objects.create(alice)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    ask(api, bob.phone, "change_phone")
    taken = api.post(f"{API}phone/", {"phone": bob.phone, "code": sms.last(bob.phone)}, format="json")
    assert error(taken) == (
        "phone_taken", zh("This number already has another account. Your number was not changed.")
    )
    ask(api, NEW, "change_phone")
    response = api.post(f"{API}phone/", {"phone": NEW, "code": sms.last(NEW)}, format="json")

    assert response.status_code == 200 and response.json() == {"phone": NEW}
    alice.refresh_from_db()
    assert alice.phone == NEW
    # Two codes sent; the anonymous request was refused before it counted.
    assert CodeQuota.objects.filter(scope="address:10.0.0.1").get().sent == 2


def test_it_refuses_a_number_change_without_a_token(api: APIClient, db: Any) -> None:
    response = api.post(f"{API}phone/", {"phone": NEW, "code": "123456"}, format="json")

    assert response.status_code == 401


def test_it_refuses_a_session_number_change_without_the_csrf_token(alice: User, sms: Sms) -> None:
    services.code_send(
        phone=NEW, purpose=Purpose.CHANGE_PHONE, client_address="10.0.0.1", language="zh-hans", user=alice
    )
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)

    response = browser.post(f"{API}phone/", {"phone": NEW, "code": sms.last(NEW)}, format="json")

    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.phone == "13800000001"

"""Password log-in lockout (django-axes, accounts/lockout.py) on the web, admin and API log-ins:
a phone and a client address that failed LOGIN_FAILURE_LIMIT times are refused even the right
password, with a translated page or the API's error shape, until the wait is over or a
coordinator unlocks the number; and sign-up that does not tell whether a number is registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from consult.models import Professional, User
from tests.accounts.conftest import text_of, zh
from tests.conftest import PASSWORD
from tests.sms import Sms

LOCKED = (
    "Too many wrong passwords for this number. Logging in with a password is blocked for "
    "%(minutes)d minutes. You can log in with a code sent to your phone instead, or ask a "
    "coordinator to unlock the number."
)
API_LOGIN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def generous_login_throttle(settings: Any) -> Iterator[None]:
    """The per-address log-in throttle (10 a minute) would stop these tries first: these tests are
    about the lockout, which holds whatever the pace."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "1000/min"}
    cache.clear()
    yield
    cache.clear()


def signed_in(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def web_login(client: Client, phone: str, password: str, **extra: Any) -> Any:
    return client.post(reverse("login"), {"username": phone, "password": password}, **extra)


def test_it_refuses_the_right_password_after_60_wrong_ones_on_the_login_page(
    alice: User, browser: Callable[..., Client]
) -> None:
    client = browser()
    answers = [web_login(client, alice.phone, f"guess-{n}") for n in range(60)]
    assert [a.status_code for a in answers[:9]] == [200] * 9

    response = web_login(client, alice.phone, PASSWORD)

    assert signed_in(client) is None
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert zh(LOCKED, minutes=30) in text_of(response)
    assert int(response["Retry-After"]) == 30 * 60


def test_it_counts_a_number_written_differently_as_the_same_number(
    alice: User, browser: Callable[..., Client]
) -> None:
    client = browser()
    for n in range(10):
        web_login(client, "+86 138-0000-0001" if n % 2 else alice.phone, "wrong")

    assert web_login(client, alice.phone, PASSWORD).status_code == 429


def test_it_does_not_let_a_rotated_x_forwarded_for_escape_the_lockout(
    alice: User, browser: Callable[..., Client]
) -> None:
    client = browser()
    for n in range(10):
        web_login(client, alice.phone, "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    response = web_login(client, alice.phone, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200")

    assert response.status_code == 429
    assert signed_in(client) is None


def test_it_locks_the_number_from_that_address_only(alice: User, browser: Callable[..., Client]) -> None:
    stranger = browser(address="203.0.113.9")
    for _ in range(10):
        web_login(stranger, alice.phone, "wrong")

    # Alice, at home on another network, is not locked out by a stranger's guesses.
    home = browser(address="10.0.0.7")
    assert web_login(home, alice.phone, PASSWORD).status_code == 302
    assert signed_in(home) == str(alice.pk)


def test_it_lets_a_locked_out_resident_in_with_a_code_and_forgets_the_failures(
    alice: User, sms: Sms, browser: Callable[..., Client]
) -> None:
    client = browser()
    for _ in range(10):
        web_login(client, alice.phone, "wrong")
    assert web_login(client, alice.phone, PASSWORD).status_code == 429

    start = client.post(reverse("login"), {"phone": alice.phone})
    client.post(start["Location"], {"code": sms.last(alice.phone)})

    assert signed_in(client) == str(alice.pk)
    assert not AccessAttempt.objects.filter(username=alice.phone).exists()


def test_it_lets_the_password_in_again_once_the_wait_is_over(alice: User, browser: Callable[..., Client]) -> None:
    client = browser()
    for _ in range(10):
        web_login(client, alice.phone, "wrong")
    assert web_login(client, alice.phone, PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))

    assert web_login(client, alice.phone, PASSWORD).status_code == 302
    assert signed_in(client) == str(alice.pk)


def test_it_locks_by_the_address_the_trusted_proxy_saw(
    alice: User, settings: Any, browser: Callable[..., Client]
) -> None:
    settings.TRUSTED_PROXIES = 1
    proxy = browser(address="10.0.0.2")  # every request comes through it
    for n in range(10):
        # The client writes the first entry (a new one each time); the proxy appends the address.
        web_login(proxy, alice.phone, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.50")

    locked = web_login(proxy, alice.phone, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.50")
    assert locked.status_code == 429
    # Alice herself, through the same proxy from her own address, is not locked out.
    assert web_login(browser(address="10.0.0.2"), alice.phone, PASSWORD,
                     HTTP_X_FORWARDED_FOR="203.0.113.51").status_code == 302


def test_it_locks_the_admin_login(coordinator: User, browser: Callable[..., Client]) -> None:
    client = browser()
    url = reverse("admin:login")
    for _ in range(10):
        client.post(url, {"username": coordinator.phone, "password": "wrong", "next": "/admin/"})

    response = client.post(url, {"username": coordinator.phone, "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 429
    assert zh(LOCKED, minutes=30) in text_of(response)
    assert signed_in(client) is None


def test_it_locks_the_api_login_with_the_error_shape_in_chinese(alice: User) -> None:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    wrong = {"phone": alice.phone, "password": "wrong"}
    answers = [client.post(API_LOGIN, wrong, format="json", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}") for n in range(10)]
    # The tenth failure locks: it is answered as locked already.
    assert [a.status_code for a in answers] == [400] * 9 + [429]

    response = client.post(API_LOGIN, {"phone": alice.phone, "password": PASSWORD}, format="json")

    assert response.status_code == 429
    assert response.json() == {"error": {"code": "locked_out", "message": zh(LOCKED, minutes=30), "fields": {}}}
    assert int(response["Retry-After"]) == 30 * 60
    assert not AuthToken.objects.exists()


def test_it_forgets_earlier_failures_after_a_successful_api_login(alice: User) -> None:
    client = APIClient()
    for _ in range(9):
        client.post(API_LOGIN, {"phone": alice.phone, "password": "wrong"}, format="json")
    assert client.post(API_LOGIN, {"phone": alice.phone, "password": PASSWORD}, format="json").status_code == 200

    client.post(API_LOGIN, {"phone": alice.phone, "password": "wrong"}, format="json")

    assert client.post(API_LOGIN, {"phone": alice.phone, "password": PASSWORD}, format="json").status_code == 200


def test_it_lets_a_coordinator_unlock_a_number(
    alice: User, bob: User, coordinator: User, browser: Callable[..., Client], login: Callable[..., Client]
) -> None:
    client = browser()
    for _ in range(10):
        web_login(client, alice.phone, "wrong")
    assert web_login(client, alice.phone, PASSWORD).status_code == 429

    # A resident does not see the page at all.
    assert login(bob).get(reverse("accounts:lockouts")).status_code == 404
    staff = login(coordinator)
    page = staff.get(reverse("accounts:lockouts"))
    assert page.status_code == 200
    assert alice.phone in text_of(page)
    done = staff.post(reverse("accounts:lockouts"), {"phone": alice.phone}, follow=True)
    assert zh("%(phone)s can log in with a password again.", phone="138****0001") in text_of(done)
    assert zh("No number is locked.") in text_of(done)

    assert web_login(client, alice.phone, PASSWORD).status_code == 302
    assert signed_in(client) == str(alice.pk)


# --- sign-up says nothing of who is registered -------------------------------------------------


def test_it_answers_a_sign_up_code_request_the_same_for_a_new_a_taken_and_a_staff_number(
    alice: User, doctor: Professional, sms: Sms
) -> None:
    answers = []
    for n, phone in enumerate(("13900001111", alice.phone, doctor.user.phone)):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR=f"10.0.1.{n}")
        answer = client.post("/api/v1/auth/code/", {"phone": phone, "purpose": "signup"}, format="json")
        body = answer.json()
        body["sent_to"] = body["sent_to"][-4:].replace(phone[-4:], "XXXX")
        answers.append((answer.status_code, body))

    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 202
    # Each number's owner has the code: only the phone's holder learns more.
    assert all(sms.last(phone) for phone in ("13900001111", alice.phone, doctor.user.phone))


def test_it_throttles_sign_ups_per_address_through_rotated_x_forwarded_for(
    db: Any, settings: Any, browser: Callable[..., Client]
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": "3/hour"}
    client = browser()
    for n in range(3):
        answer = client.post(
            reverse("signup"), {"name": "赵大妈", "phone": f"1390000{n:04d}", "password": ""},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
        assert answer.status_code == 302

    refused = client.post(
        reverse("signup"), {"name": "赵大妈", "phone": "13900009999", "password": ""}, HTTP_X_FORWARDED_FOR="192.0.2.1"
    )

    assert refused.status_code == 429
    assert zh("Too many tries. %(wait)s", wait="") in text_of(refused)
    api = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR="10.0.0.1")
    answer = api.post("/api/v1/auth/code/", {"phone": "13900008888", "purpose": "signup"}, format="json")
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "throttled"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_it_answers_a_locked_out_login_the_same_under_daphne(alice: User) -> None:
    """Under ASGI, as daphne serves it, axes' middleware runs its async path (which passes the
    lockout answer its arguments in another order): the page and the API answer the same there."""
    client = AsyncClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    for _ in range(10):
        await client.post(reverse("login"), {"username": alice.phone, "password": "wrong"})

    page = await client.post(reverse("login"), {"username": alice.phone, "password": PASSWORD})
    api = await client.post(
        API_LOGIN, {"phone": alice.phone, "password": PASSWORD}, content_type="application/json"
    )

    assert page.status_code == 429
    assert zh(LOCKED, minutes=30) in text_of(page)
    assert api.status_code == 429
    assert api.json()["error"]["code"] == "locked_out"

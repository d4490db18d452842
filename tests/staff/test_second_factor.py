"""Staff (doctors, lawyers, coordinators, admins) prove a second factor after their password:
an authenticator app's code, or a single-use recovery code. Residents are never asked."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from consult.models import Case, Professional, User
from staff import services
from tests.conftest import PASSWORD, recovery_code, second_factor_device, unverified_login

API = "/api/v1/"


def code_now(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def password_login(user: User, language: str = "zh-hans") -> Client:
    """A browser that typed the phone and password on the log-in page (and nothing else yet)."""
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    response = client.post(reverse("login"), {"username": user.phone, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


@pytest.fixture
def lawyer_user(lawyer: Professional) -> User:
    return lawyer.user


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser(phone="13700000009", name="管理员", password=PASSWORD)


@pytest.mark.parametrize("who", ["coordinator", "doctor", "lawyer", "admin_user"])
def test_it_sends_staff_without_an_authenticator_to_enrol_before_any_page(
    who: str, request: pytest.FixtureRequest, case: Case
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person
    client = password_login(user)

    for path in ("/", reverse("case_detail", args=[case.reference]), reverse("dashboard"), "/admin/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:enrol") + "?next=")
    assert client.get(reverse("staff:enrol")).status_code == 200


def test_it_enrols_an_authenticator_with_its_qr_code_and_key_then_shows_the_recovery_codes_once(
    coordinator: User,
) -> None:
    client = password_login(coordinator)
    page = client.get(reverse("staff:enrol") + "?next=/coordinator/")
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=coordinator, confirmed=False)
    assert "<svg" in html and services.totp_secret(device) in html
    assert "设置第二步验证" in html  # Chinese first
    # The same secret on a reload: a QR code already scanned still matches.
    client.get(reverse("staff:enrol"))
    assert TOTPDevice.objects.filter(user=coordinator).count() == 1

    wrong = client.post(reverse("staff:enrol"), {"code": "000000" if code_now(device) != "000000" else "111111"})
    assert wrong.status_code == 200 and not TOTPDevice.objects.get(pk=device.pk).confirmed

    TOTPDevice.objects.get(pk=device.pk).throttle_reset()  # a person takes longer than the 1 s it waits
    done = client.post(reverse("staff:enrol"), {"code": code_now(device), "next": "/coordinator/"})
    assert done.status_code == 302 and done["Location"].startswith(reverse("staff:recovery"))
    shown = client.get(done["Location"]).content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", shown)
    assert len(codes) == services.RECOVERY_CODES
    assert set(codes) == set(StaticToken.objects.filter(device__user=coordinator).values_list("token", flat=True))
    # Once: a reload says how many are left, not which.
    again = client.get(reverse("staff:recovery")).content.decode()
    assert not any(code in again for code in codes)
    # Through: the page the coordinator wanted.
    assert client.get("/coordinator/").status_code == 200


def test_it_asks_the_code_after_the_password_and_refuses_a_wrong_or_reused_one(coordinator: User) -> None:
    device = second_factor_device(coordinator)
    client = password_login(coordinator)

    held = client.get(reverse("dashboard"))
    assert held.status_code == 302 and held["Location"] == reverse("staff:verify") + "?next=%2Fcoordinator%2F"
    page = client.get(held["Location"]).content.decode()
    assert "第二步" in page

    code = code_now(device)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = client.post(reverse("staff:verify"), {"code": wrong, "next": "/coordinator/"})
    assert refused.status_code == 200 and "不正确" in refused.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302

    TOTPDevice.objects.get(pk=device.pk).throttle_reset()  # a person takes longer than the 1 s it waits
    passed = client.post(reverse("staff:verify"), {"code": code, "next": "/coordinator/"})
    assert passed.status_code == 302 and passed["Location"] == "/coordinator/"
    assert client.get(reverse("dashboard")).status_code == 200

    # The same code again, in another browser: refused (a code is good once).
    other = password_login(coordinator)
    assert other.post(reverse("staff:verify"), {"code": code}).status_code == 200
    assert other.get(reverse("dashboard")).status_code == 302


def test_it_lets_a_recovery_code_in_once(coordinator: User) -> None:
    second_factor_device(coordinator)
    code = recovery_code(coordinator)

    first = password_login(coordinator)
    assert first.post(reverse("staff:verify"), {"code": code.upper()}).status_code == 302
    assert first.get(reverse("dashboard")).status_code == 200

    second = password_login(coordinator)
    assert second.post(reverse("staff:verify"), {"code": code}).status_code == 200
    assert second.get(reverse("dashboard")).status_code == 302


def test_it_replaces_every_old_recovery_code_when_new_ones_are_made(
    coordinator: User, login: Callable[..., Client]
) -> None:
    old = recovery_code(coordinator)
    client = login(coordinator)
    client.post(reverse("staff:recovery"))
    new = client.get(reverse("staff:recovery"))
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", new.content.decode())

    assert len(codes) == services.RECOVERY_CODES and old not in codes
    assert services.second_factor_check(user=coordinator, code=codes[0]) is not None
    assert services.second_factor_check(user=coordinator, code=old) is None


def test_it_never_asks_a_resident(alice: User) -> None:
    client = password_login(alice)

    assert client.get(reverse("my_cases")).status_code == 200
    assert client.get(reverse("staff:verify")).status_code == 404
    assert not TOTPDevice.objects.filter(user=alice).exists()


def test_it_keeps_the_admin_closed_to_a_staff_session_without_its_second_factor(admin_user: User) -> None:
    second_factor_device(admin_user)
    client = Client()
    unverified_login(client, admin_user)

    response = client.get("/admin/consult/case/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("staff:verify"))
    # And the admin site itself says no, should the middleware ever be left out.
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = admin_user
    admin_user.is_verified = lambda: False  # type: ignore[attr-defined]
    assert not admin.site.has_permission(request)
    admin_user.is_verified = lambda: True  # type: ignore[attr-defined]
    assert admin.site.has_permission(request)

    verified = Client()
    verified.force_login(admin_user)
    assert verified.get("/admin/consult/case/").status_code == 200


def test_it_gives_staff_an_api_token_only_with_their_code(coordinator: User, alice: User) -> None:
    device = second_factor_device(coordinator)
    credentials = {"phone": coordinator.phone, "password": PASSWORD}

    missing = APIClient().post(f"{API}auth/token/", credentials, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "second_factor_required"
    assert "otp_code" in missing.json()["error"]["fields"]
    wrong = APIClient().post(f"{API}auth/token/", {**credentials, "otp_code": "12345x"}, format="json")
    assert wrong.status_code == 400

    right = APIClient().post(f"{API}auth/token/", {**credentials, "otp_code": code_now(device)}, format="json")
    assert right.status_code == 200
    token = right.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(f"{API}cases/").status_code == 200

    resident = APIClient().post(f"{API}auth/token/", {"phone": alice.phone, "password": PASSWORD}, format="json")
    assert resident.status_code == 200


def test_it_refuses_the_api_to_a_staff_session_without_its_second_factor(coordinator: User) -> None:
    client = Client()
    unverified_login(client, coordinator)

    response = client.get(f"{API}cases/")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "second_factor_required"


def test_it_lets_the_demo_coordinator_in_with_a_published_demo_code(db: Any) -> None:
    import io

    from django.core.management import call_command

    from consult.management.commands.seed_demo import COORDINATOR, DEMO_PASSWORD, DEMO_RECOVERY_CODES

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert DEMO_RECOVERY_CODES[0] in out.getvalue()
    client = Client()
    client.post(reverse("login"), {"username": COORDINATOR[0], "password": DEMO_PASSWORD})
    assert client.get(reverse("dashboard")).status_code == 302

    response = client.post(reverse("staff:verify"), {"code": DEMO_RECOVERY_CODES[0], "next": "/coordinator/"})

    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200
    # Only the demo's own staff have them.
    assert not StaticToken.objects.exclude(device__user__phone__in=[COORDINATOR[0]] + [
        phone for phone in User.objects.exclude(role="resident").values_list("phone", flat=True)
    ]).exists()

"""Accounts: logging in by phone, changing the password, staff accounts, demo data, the admin."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult.models import Case, CaseEvent, Kind, Professional, Role, Skill, User
from tests.conftest import PASSWORD

NEW_PASSWORD = "another-Long-pass-9"
STAFF_PASSWORD = "staff-Long-pass-3"
INVALID_LOGIN = "The phone number or password is not right. Please try again."


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _log_in(phone: str, password: str) -> tuple[Client, Any]:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    return client, client.post(reverse("login"), {"username": phone, "password": password})


def _signed_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.mark.parametrize("typed", ["13800000001", "+86 138-0000-0001", "138 0000 0001", "0086 13800000001"])
def test_it_logs_a_resident_in_with_phone_and_password(typed: str, alice: User) -> None:
    client, response = _log_in(typed, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert _signed_in_as(client) == str(alice.pk)
    assert client.get(reverse("my_cases")).status_code == 200


def test_it_lets_the_login_phone_input_take_a_number_written_with_spaces_and_prefix(db: Any) -> None:
    # A browser refuses to type past maxlength: the input must take "+86 138-0000-0001".
    page = Client().get(reverse("login")).content.decode()

    phone_input = re.search(r'<input[^>]*name="username"[^>]*>', page)
    assert phone_input is not None
    maxlength = re.search(r'maxlength="(\d+)"', phone_input.group(0))
    assert maxlength is None or int(maxlength.group(1)) >= len("+86 138-0000-0001")


@pytest.mark.parametrize(
    ("phone", "password"),
    [("13800000001", "not-the-password"), ("13800000099", PASSWORD)],
    ids=["wrong password", "unknown phone"],
)
def test_it_refuses_a_wrong_login_with_one_message_that_does_not_say_which_part_was_wrong(
    phone: str, password: str, alice: User
) -> None:
    client, response = _log_in(phone, password)

    assert response.status_code == 200
    with translation.override("zh-hans"):
        message = translation.gettext(INVALID_LOGIN)
    assert message in html.unescape(response.content.decode())
    assert _signed_in_as(client) is None


def test_it_logs_out_other_sessions_when_the_password_changes_but_keeps_the_changer_in(alice: User) -> None:
    changer, _ = _log_in("13800000001", PASSWORD)
    other_device, _ = _log_in("13800000001", PASSWORD)
    assert other_device.get(reverse("my_cases")).status_code == 200

    response = changer.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert changer.get(reverse("my_cases")).status_code == 200
    after = other_device.get(reverse("my_cases"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("login"))
    assert _log_in("13800000001", PASSWORD)[0].session.get("_auth_user_id") is None
    assert _signed_in_as(_log_in("13800000001", NEW_PASSWORD)[0]) == str(alice.pk)


def test_it_keeps_the_password_when_the_old_one_is_wrong(alice: User) -> None:
    changer, _ = _log_in("13800000001", PASSWORD)

    response = changer.post(
        reverse("password_change"),
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def _create_staff(*args: str) -> str:
    out = io.StringIO()
    call_command("create_staff", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_doctor_with_skills_from_the_command_line(
    respiratory: Skill, cardiology: Skill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STAFF_PASSWORD)

    _create_staff(
        "--role=doctor", "--phone=139 0000 0099", "--name=钱医生", "--organisation=市第一人民医院",
        "--city=杭州", "--skills=respiratory, cardiology", "--capacity=3", "--on-duty",
    )

    professional = Professional.objects.select_related("user").get(user__phone="13900000099")
    assert professional.user.role == Role.DOCTOR
    assert professional.user.name == "钱医生"
    assert professional.kind == Kind.MEDICAL
    assert set(professional.skills.all()) == {respiratory, cardiology}
    assert professional.capacity == 3
    assert professional.on_duty
    assert professional.user.check_password(STAFF_PASSWORD)
    client, _ = _log_in("13900000099", STAFF_PASSWORD)
    # The password works; a new staff account's first page is the enrolment of its second factor.
    assert client.get(reverse("work_queue"))["Location"].startswith(reverse("staff:enrol"))


def test_it_creates_a_coordinator_from_the_command_line(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STAFF_PASSWORD)

    _create_staff("--role=coordinator", "--phone=13600000009", "--name=吴协调", "--domains=legal")

    user = User.objects.get(phone="13600000009")
    assert user.is_coordinator
    assert user.is_staff
    assert user.coordinated_kinds == {Kind.LEGAL}
    assert not Professional.objects.filter(user=user).exists()
    client, _ = _log_in("13600000009", STAFF_PASSWORD)
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("staff:enrol"))


def test_it_refuses_unknown_skill_codes_and_creates_nobody(
    respiratory: Skill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STAFF_PASSWORD)

    with pytest.raises(CommandError, match="no-such-skill"):
        _create_staff("--role=doctor", "--phone=13900000099", "--name=钱医生", "--skills=respiratory,no-such-skill")

    assert not User.objects.filter(phone="13900000099").exists()


def test_it_refuses_a_doctor_with_a_legal_skill_and_creates_nobody(
    sick_pay: Skill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STAFF_PASSWORD)

    with pytest.raises(CommandError, match="sick-pay"):
        _create_staff("--role=doctor", "--phone=13900000099", "--name=钱医生", "--skills=sick-pay")

    assert not User.objects.filter(phone="13900000099").exists()


def test_it_refuses_a_phone_that_already_has_an_account(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STAFF_PASSWORD)

    with pytest.raises(CommandError):
        _create_staff("--role=coordinator", "--phone=13800000001", "--name=周协调")

    alice.refresh_from_db()
    assert alice.is_resident
    assert alice.check_password(PASSWORD)


def _demo_counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "skills": Skill.objects.count(),
        "professionals": Professional.objects.count(),
        "professional skills": Professional.skills.through.objects.count(),
        "cases": Case.objects.count(),
        "events": CaseEvent.objects.count(),
    }


def test_it_loads_the_demo_data_once_however_often_seed_demo_runs(db: Any) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    first = _demo_counts()
    call_command("seed_demo", stdout=io.StringIO())

    assert _demo_counts() == first
    assert all(count > 0 for count in first.values()), first


@pytest.mark.parametrize("path", ["/admin/", "/admin/consult/case/", "case change page"])
def test_it_opens_the_admin_to_a_coordinator(
    path: str, case: Case, coordinator: User, login: Callable[..., Client]
) -> None:
    url = reverse("admin:consult_case_change", args=[case.pk]) if path == "case change page" else path

    response = login(coordinator).get(url)

    assert response.status_code == 200
    if path != "/admin/":
        assert case.reference in response.content.decode()


@pytest.mark.parametrize("who", ["alice", "doctor"])
@pytest.mark.parametrize("path", ["/admin/", "/admin/consult/case/"])
def test_it_keeps_residents_and_professionals_out_of_the_admin(
    who: str, path: str, case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    user = alice if who == "alice" else doctor.user

    response = login(user).get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert case.reference not in response.content.decode()

"""Where a log-in lands, and the password rules a sign-up shows before the first try."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import services
from consult.models import Professional, Skill, User
from tests.conftest import PASSWORD


def log_in(phone: str, next_url: str = "") -> Any:
    data = {"username": phone, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(reverse("login"), data)


def test_it_lands_a_doctor_on_the_queue(doctor: Professional) -> None:
    assert log_in(doctor.user.phone)["Location"] == reverse("work_queue")


def test_it_lands_a_lawyer_on_the_queue(lawyer: Professional) -> None:
    assert log_in(lawyer.user.phone)["Location"] == reverse("work_queue")


def test_it_lands_a_coordinator_on_the_dashboard(coordinator: User) -> None:
    assert log_in(coordinator.phone)["Location"] == reverse("dashboard")


def test_it_lands_a_resident_without_cases_on_the_catalogue(alice: User) -> None:
    assert log_in(alice.phone)["Location"] == reverse("home")


def test_it_lands_a_resident_with_a_case_on_her_cases(alice: User, respiratory: Skill) -> None:
    services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周")

    assert log_in(alice.phone)["Location"] == reverse("my_cases")


def test_it_honours_a_safe_next_and_ignores_another_site(doctor: Professional) -> None:
    case_page = "/cases/ABC123/"

    assert log_in(doctor.user.phone, case_page)["Location"] == case_page
    assert log_in(doctor.user.phone, "https://evil.example/")["Location"] == reverse("work_queue")


def test_it_shows_the_password_rules_before_the_first_try(db: Any) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get(reverse("signup")).content.decode()

    with translation.override("zh-hans"):
        minimum = translation.ngettext(
            "Your password must contain at least %(min_length)d character.",
            "Your password must contain at least %(min_length)d characters.",
            8,
        ) % {"min_length": 8}
    assert minimum in page
    assert "<li>" in page.split('name="password"', 1)[1]


def test_it_says_a_password_is_too_short_in_chinese_on_a_chinese_page(db: Any) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(
        reverse("signup"), {"name": "刘秀兰", "phone": "13812345678", "password": "abc"}
    )
    page = response.content.decode()

    assert "密码太短：至少要 8 个字符。" in page
    assert "too short" not in page


def test_it_says_a_password_is_too_short_in_english_on_an_english_page(db: Any) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post(
        reverse("signup"), {"name": "Liu", "phone": "13812345678", "password": "abc"}
    )

    assert "This password is too short: use at least 8 characters." in response.content.decode()


def test_it_gives_a_visitor_the_service_landing_with_the_code_form(
    respiratory: Skill, login: Callable[..., Client]
) -> None:
    url = reverse("case_new", args=[respiratory.code]) + "?place=青山村卫生室"

    page = login(None).get(url).content.decode()

    assert respiratory.name_zh in page and respiratory.office_phone in page
    assert "青山村卫生室" in page
    assert f'action="{reverse("signup")}"' in page
    assert 'name="next" value="/services/respiratory/new/?place=' in page
    assert 'name="password"' not in page


def test_it_names_the_service_on_the_way_when_the_number_is_refused(respiratory: Skill) -> None:
    next_url = reverse("case_new", args=[respiratory.code]) + "?place=青山村卫生室"

    response = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(
        reverse("signup"), {"name": "刘秀兰", "phone": "12345", "next": next_url}
    )
    page = response.content.decode()

    assert 'class="for-service"' in page and respiratory.name_zh in page
    assert f'name="next" value="{next_url}"' in page


def test_it_names_no_service_when_next_is_another_page(db: Any) -> None:
    response = Client().get(reverse("signup"), {"next": reverse("my_cases")})

    assert 'class="for-service"' not in response.content.decode()

"""A resident's journey through the pages, in Simplified Chinese and in English.

Project strings are compared with what gettext gives for the page language (the zh_Hans catalogue
is still being written); the Chinese that is asserted literally comes from data (skill names) or
from Django's own catalogue (form and password errors).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django import forms
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

from consult.models import Case, Skill, Status, User
from consult.templatetags.consult_tags import duration_text
from tests.conftest import PASSWORD
from tests.sms import Sms

LANGUAGES = ["zh-hans", "en"]
SKILL_NAME = {"zh-hans": "呼吸科", "en": "Respiratory medicine"}
MATERIALS = {"zh-hans": ["检查报告", "药物清单"], "en": ["Exam report", "Medicines"]}
# Django's own translations: present in both catalogues today.
def required_text(language: str) -> str:
    """Django's "required" message as the installed catalogues give it in `language` (apps such
    as DRF ship their own wording for it)."""
    with translation.override(language):
        return str(translation.gettext("This field is required."))
TOO_COMMON = {"zh-hans": "这个密码太常见了。", "en": "This password is too common."}

# Project msgids whose text is asserted through gettext; the zh_Hans catalogue must translate them.
PLACE_IN_LINE = "You are number %(place)s in line."
ESTIMATED_WAIT = "Estimated wait: about %(wait)s."
PROMISE = ("A professional answers within %(hours)s hour.", "A professional answers within %(hours)s hours.")
CARD_PROMISE = ("Answer within %(hours)s hour", "Answer within %(hours)s hours")
WELCOME = "Welcome! Your account is ready."
RECEIVED = "Your case has been received. Its reference is %(ref)s."
WITHDRAWN = "Your case has been withdrawn."
BAD_PHONE = "Enter an 11-digit mobile phone number starting with 1."


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _t(language: str, message: str, **params: Any) -> str:
    with translation.override(language):
        text = translation.gettext(message)
    return text % params if params else text


def _promise(language: str, hours: int, promise: tuple[str, str] | None = None) -> str:
    with translation.override(language):
        return translation.ngettext(*(promise or PROMISE), hours) % {"hours": hours}


def _label(language: str, status: Status) -> str:
    with translation.override(language):
        return str(status.label)


def _wait(language: str, wait: timedelta) -> str:
    with translation.override(language):
        return duration_text(wait)


def intake_data(form: forms.Form, skill: Skill, text: str) -> dict[str, str]:
    """What a resident fills in on a service's intake page: the core form, or its domain's."""
    known = {
        "description": text, "complaint": text, "skill": str(skill.pk), "since_when": "两周",
        "patient_age": "70", "health_consent": "on", "materials_later": "on",
    }
    consent_text = getattr(form, "consent_text", None)
    if consent_text is not None:
        # The hidden field the page carries: the version of the consent text it showed.
        known["consent_version"] = str(consent_text.version)
    data: dict[str, str] = {}
    for name, field in form.fields.items():
        if name in known:
            data[name] = known[name]
        elif field.required and isinstance(field, forms.ChoiceField):
            choices: Any = field.choices
            data[name] = str(next(iter(choices))[0])
        elif field.required:
            raise AssertionError(f"the intake form asks for {name!r}: teach intake_data what to answer")
    return data


def _open_case(client: Client, skill: Skill, text: str) -> Any:
    form = client.get(reverse("case_new", args=[skill.code])).context["form"]
    return client.post(reverse("case_new", args=[skill.code]), intake_data(form, skill, text))


def _body(response: Any) -> str:
    return html.unescape(response.content.decode())


def _other(language: str) -> str:
    return "en" if language == "zh-hans" else "zh-hans"


def _assert_in_language(body: str, language: str) -> None:
    assert f'<html lang="{language}">' in body
    assert SKILL_NAME[language] in body
    assert SKILL_NAME[_other(language)] not in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_takes_a_resident_from_signup_to_a_withdrawn_case(
    language: str, respiratory: Skill, login: Callable[..., Client], sms: Sms
) -> None:
    client = login(None, language)

    signup_page = client.get(reverse("signup"))
    assert signup_page.status_code == 200
    assert f'<html lang="{language}">' in signup_page.content.decode()

    # Sign up: a code goes to the phone, and once it is typed, land on the home page logged in.
    code_page = client.post(reverse("signup"), {"name": "赵大妈", "phone": "138 0000 0009", "password": PASSWORD})
    assert code_page["Location"] == reverse("accounts:signup_code")
    assert not User.objects.filter(phone="13800000009").exists()
    home = client.post(code_page["Location"], {"code": sms.last("13800000009")}, follow=True)
    assert home.redirect_chain == [(reverse("home"), 302)]
    resident = User.objects.get(phone="13800000009")
    assert resident.is_resident
    assert home.context["user"] == resident
    body = _body(home)
    assert _t(language, WELCOME) in body
    assert f'href="{reverse("my_cases")}"' in body

    # The catalogue, in the page language: a short card per service, opening the service's page.
    _assert_in_language(body, language)
    assert _promise(language, 24, CARD_PROMISE) in body
    assert f'href="{reverse("case_new", args=[respiratory.code])}"' in body

    # The service's page: what to prepare, the office's phone, the promised time; a case opened
    # there waits in line, nobody being on duty.
    form = client.get(reverse("case_new", args=[respiratory.code]))
    assert form.status_code == 200
    intake_page = _body(form)
    _assert_in_language(intake_page, language)
    for line in MATERIALS[language]:
        assert f"<li>{line}</li>" in intake_page
    for line in MATERIALS[_other(language)]:
        assert f"<li>{line}</li>" not in intake_page
    assert 'href="tel:0571-12345"' in intake_page
    assert _promise(language, 24) in intake_page
    answers = intake_data(form.context["form"], respiratory, "咳嗽两周，夜里加重。")
    opened = client.post(reverse("case_new", args=[respiratory.code]), answers)
    case = Case.objects.get(resident=resident)
    assert opened.status_code == 302
    assert opened["Location"] == reverse("case_detail", args=[case.reference])
    assert case.status == Status.WAITING

    page = client.get(opened["Location"])
    body = _body(page)
    _assert_in_language(body, language)
    assert _t(language, RECEIVED, ref=case.reference) in body
    assert f'<strong class="reference">{case.reference}</strong>' in body
    assert f'<span class="status status-waiting">{_label(language, Status.WAITING)}</span>' in body
    assert "咳嗽两周，夜里加重。" in body

    # My cases: the case, its status and its place in line with an estimated wait.
    mine = _body(client.get(reverse("my_cases")))
    _assert_in_language(mine, language)
    assert case.reference in mine
    assert _label(language, Status.WAITING) in mine
    assert _t(language, PLACE_IN_LINE, place=1) in mine
    # Nobody on duty and no history yet: the promised 24 hours, for the one case in line.
    assert _t(language, ESTIMATED_WAIT, wait=_wait(language, timedelta(hours=24))) in mine

    # Withdraw.
    withdrawn = client.post(reverse("case_action", args=[case.reference, "withdraw"]), follow=True)
    assert withdrawn.redirect_chain == [(reverse("case_detail", args=[case.reference]), 302)]
    body = _body(withdrawn)
    assert _t(language, WITHDRAWN) in body
    assert f'<span class="status status-withdrawn">{_label(language, Status.WITHDRAWN)}</span>' in body
    case.refresh_from_db()
    assert case.status == Status.WITHDRAWN
    mine = _body(client.get(reverse("my_cases")))
    assert _label(language, Status.WITHDRAWN) in mine
    assert _t(language, PLACE_IN_LINE, place=1) not in mine


JOURNEY_MSGIDS = [
    "Waiting in line", "Withdrawn", PLACE_IN_LINE, ESTIMATED_WAIT, WELCOME, RECEIVED, WITHDRAWN, BAD_PHONE,
]


def test_it_has_chinese_for_every_project_string_the_journey_shows() -> None:
    # With the journey's gettext comparisons, this makes the Chinese pages Chinese, not fallbacks.
    untranslated = [m for m in JOURNEY_MSGIDS if _t("zh-hans", m) == m]
    with translation.override("zh-hans"):
        for promise in (PROMISE, CARD_PROMISE):
            if translation.ngettext(*promise, 24) == promise[1]:
                untranslated.append(promise[0])
        if duration_text(timedelta(days=1)) == "1 day":
            untranslated.append("%(n)d day")

    assert untranslated == []


def test_it_shows_no_english_words_for_a_waiting_case_on_the_chinese_pages(
    respiratory: Skill, alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice, "zh-hans")
    _open_case(client, respiratory, "咳嗽两周。")

    body = _body(client.get(reverse("my_cases")))

    assert "呼吸科" in body
    assert _label("zh-hans", Status.WAITING) in body
    assert "Waiting in line" not in body
    assert "You are number 1 in line." not in body
    assert "Estimated wait" not in body


@pytest.fixture
def chinese_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Give a msgid a Chinese translation for one test, whatever the catalogue holds yet."""
    catalog = trans_real.translation("zh-hans")._catalog._catalogs[0]  # type: ignore[attr-defined]

    def add(msgid: str, text: str) -> None:
        monkeypatch.setitem(catalog, msgid, text)

    yield add


def test_it_reports_an_action_in_the_language_of_the_request(
    respiratory: Skill, alice: User, login: Callable[..., Client], chinese_for: Callable[[str, str], None]
) -> None:
    # A message translated once at import time would come out the same in both languages.
    chinese_for(WITHDRAWN, "您的求助已撤回。")
    case_zh = login(alice, "zh-hans")
    _open_case(case_zh, respiratory, "咳嗽两周。")
    case_en = login(alice, "en")
    _open_case(case_en, respiratory, "Coughing for two weeks.")
    first, second = Case.objects.order_by("pk")

    zh = _body(case_zh.post(reverse("case_action", args=[first.reference, "withdraw"]), follow=True))
    en = _body(case_en.post(reverse("case_action", args=[second.reference, "withdraw"]), follow=True))

    assert "您的求助已撤回。" in zh
    assert WITHDRAWN in en
    assert "您的求助已撤回。" not in en


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_refuses_a_signup_with_a_bad_phone_number_in_the_page_language(
    language: str, respiratory: Skill, login: Callable[..., Client]
) -> None:
    client = login(None, language)
    users_before = User.objects.count()

    response = client.post(reverse("signup"), {"name": "赵大妈", "phone": "12345", "password": PASSWORD})

    assert response.status_code == 200
    body = _body(response)
    assert f'<p class="error" role="alert">{_t(language, BAD_PHONE)}</p>' in body
    assert f'<html lang="{language}">' in body
    assert User.objects.count() == users_before
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_does_not_tell_at_signup_that_a_phone_already_has_an_account(
    language: str, alice: User, login: Callable[..., Client], sms: Sms
) -> None:
    # Sign-up used to refuse a taken number at once, telling anyone that it had an account. Now
    # the number gets a code like any other (tests/accounts: only its owner learns more).
    client = login(None, language)
    users_before = User.objects.count()

    # Alice's number, written another way: still the same number.
    response = client.post(
        reverse("signup"), {"name": "冒名者", "phone": "+86 138-0000-0001", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:signup_code")
    assert len(sms.codes(alice.phone)) == 1
    assert User.objects.count() == users_before
    assert not User.objects.filter(name="冒名者").exists()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_refuses_a_signup_with_a_weak_password_in_the_page_language(
    language: str, db: Any, login: Callable[..., Client]
) -> None:
    client = login(None, language)

    response = client.post(reverse("signup"), {"name": "赵大妈", "phone": "13800000009", "password": "password"})

    assert response.status_code == 200
    body = _body(response)
    assert f'<p class="error" role="alert">{TOO_COMMON[language]}</p>' in body
    assert TOO_COMMON[_other(language)] not in body
    assert not User.objects.filter(phone="13800000009").exists()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_refuses_a_case_with_an_empty_description_in_the_page_language(
    language: str, respiratory: Skill, alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice, language)

    response = _open_case(client, respiratory, "   ")

    assert response.status_code == 200
    body = _body(response)
    assert f'<p class="error" role="alert">{required_text(language)}</p>' in body
    assert required_text(_other(language)) not in body
    _assert_in_language(body, language)
    assert not Case.objects.exists()


def test_it_switches_the_page_language_with_the_language_form(
    respiratory: Skill, login: Callable[..., Client]
) -> None:
    client = login(None, "zh-hans")
    home = _body(client.get(reverse("home")))
    _assert_in_language(home, "zh-hans")
    # The switch is offered on the page, and posts to /i18n/setlang/.
    assert '<form action="/i18n/setlang/" method="post"' in home
    assert 'name="language" value="en"' in home

    switched = client.post("/i18n/setlang/", {"language": "en", "next": reverse("home")})

    assert switched.status_code == 302
    assert switched["Location"] == reverse("home")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    home = _body(client.get(reverse("home")))
    _assert_in_language(home, "en")
    assert 'name="language" value="zh-hans"' in home

    client.post("/i18n/setlang/", {"language": "zh-hans", "next": reverse("home")})
    _assert_in_language(_body(client.get(reverse("home"))), "zh-hans")

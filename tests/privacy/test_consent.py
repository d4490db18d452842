"""The separate consent to sensitive information (PIPL arts. 29, 30): shown apart from the form
with its purpose and necessity, recorded per case with the version of the very text agreed to,
by whom, when, in which language and from where, on the page and the API."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from consult.models import Case, Professional, Skill, User
from medical import services as medical_services
from medical.models import MedicalIntake
from privacy.models import Consent, ConsentChannel, ConsentText, Purpose
from privacy.selectors import INITIAL_VERSION, consent_text_current
from privacy.services import CONSENT_TEXT_CHANGED
from tests.legal.conftest import intake_post
from tests.privacy.conftest import medical_answers, t

API = "/api/v1/"
pytestmark = pytest.mark.django_db


def _page(response: Any) -> str:
    return html.unescape(response.content.decode())


def _new_version(purpose: str) -> ConsentText:
    current = consent_text_current(purpose=purpose)
    return ConsentText.objects.create(
        purpose=purpose, version=current.version + 1, title_zh="新标题", title_en="New title",
        body_zh="新的用途说明。", body_en="The new purpose.", agree_zh="我同意新的说明。",
        agree_en="I agree to the new text.",
    )


def test_it_shows_the_health_consent_apart_with_its_purpose_and_necessity(
    alice: User, respiratory: Skill, login: Callable[..., Client]
) -> None:
    text = consent_text_current(purpose=Purpose.HEALTH)
    page = _page(login(alice).get(reverse("case_new", args=[respiratory.code])))
    box = page[page.index('<fieldset class="field consent'):]
    box = box[: box.index("</fieldset>")]
    assert text.title_zh in box
    for paragraph in text.body_zh.split("\n\n"):
        assert paragraph in box
    assert "为什么需要" in box and "用途" in box
    assert text.agree_zh in box  # the checkbox's own words
    assert f'name="consent_version" value="{text.version}"' in box


def test_it_records_the_consent_with_the_version_language_person_and_time(
    alice: User, respiratory: Skill, doctor: Professional, login: Callable[..., Client]
) -> None:
    before = timezone.now()
    version = INITIAL_VERSION["health"]
    url = reverse("case_new", args=[respiratory.code])
    response = login(alice, "en").post(url, medical_answers(respiratory, version))
    assert response.status_code == 302
    case = Case.objects.get(resident=alice)
    consent = Consent.objects.get(case=case)
    assert (consent.purpose, consent.text.version, consent.language, consent.channel) == (
        Purpose.HEALTH, version, "en", ConsentChannel.PAGE
    )
    assert consent.given_by == alice
    assert before <= consent.given_at <= timezone.now()
    # The words agreed to can be read back, in the language they were shown in.
    assert consent.shown_text()["agree"] == consent_text_current(purpose=Purpose.HEALTH).agree_en
    assert "Why it is needed" in consent.shown_text()["body"]


def test_it_refuses_an_answer_to_a_text_replaced_since_the_page_was_opened(
    alice: User, respiratory: Skill, doctor: Professional, login: Callable[..., Client]
) -> None:
    old = consent_text_current(purpose=Purpose.HEALTH).version
    new = _new_version(Purpose.HEALTH)
    client = login(alice, "en")
    response = client.post(reverse("case_new", args=[respiratory.code]), medical_answers(respiratory, old))
    assert response.status_code == 200
    assert response.context["form"].errors["health_consent"] == [t("en", str(CONSENT_TEXT_CHANGED))]
    assert not Case.objects.filter(resident=alice).exists()
    page = _page(response)
    assert "The new purpose." in page and "I agree to the new text." in page
    assert f'name="consent_version" value="{new.version}"' in page
    # Agreeing to the text now shown opens the case, on that version.
    response = client.post(reverse("case_new", args=[respiratory.code]), medical_answers(respiratory, new.version))
    assert response.status_code == 302
    assert Consent.objects.get(case__resident=alice).text == new


def test_it_records_the_employer_consent_of_a_labour_dispute(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: Any, login: Callable[..., Client]
) -> None:
    response = login(alice).post(reverse("case_new", args=[sick_pay.code]), intake_post(sick_pay))
    assert response.status_code == 302
    consent = Consent.objects.get(case__resident=alice)
    assert (consent.purpose, consent.text.version, consent.language) == (
        Purpose.SHARE_EMPLOYER, INITIAL_VERSION["share_employer"], "zh-hans"
    )


def test_the_api_gives_the_text_and_records_the_version_the_app_showed(
    alice: User, respiratory: Skill, doctor: Professional
) -> None:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    text = client.get(f"{API}consents/health/").json()
    current = consent_text_current(purpose=Purpose.HEALTH)
    assert text["version"] == current.version
    assert text["agree"] == current.agree_en and text["zh_hans"]["agree"] == current.agree_zh
    assert client.get(f"{API}consents/nothing/").status_code == 404

    client.force_authenticate(alice)
    body = {
        "skill": "respiratory", "complaint": "咳嗽两周。", "since_when": "两周", "patient_age": 58,
        "patient_sex": "female", "health_consent": True,
    }
    missing = client.post(f"{API}cases/medical/", body, format="json")
    assert missing.status_code == 400
    assert "consent_version" in missing.json()["error"]["fields"]
    stale = client.post(f"{API}cases/medical/", {**body, "consent_version": text["version"] - 1}, format="json")
    assert stale.status_code == 400
    assert stale.json()["error"]["fields"]["health_consent"] == [t("en", str(CONSENT_TEXT_CHANGED))]
    assert not Case.objects.filter(resident=alice).exists()

    opened = client.post(f"{API}cases/medical/", {**body, "consent_version": text["version"]}, format="json")
    assert opened.status_code == 201
    consent = Consent.objects.get(case__reference=opened.json()["reference"])
    assert (consent.text.version, consent.channel, consent.language, consent.given_by) == (
        current.version, ConsentChannel.API, "en", alice
    )


def test_the_consents_given_before_versioning_point_at_the_sentence_then_shown(
    alice: User, respiratory: Skill, doctor: Professional
) -> None:
    from importlib import import_module

    migration = import_module("privacy.migrations.0002_texts_and_earlier_consents")
    case, _ = medical_services.medical_case_submit(
        resident=alice, skill=respiratory, complaint="咳嗽", since_when="两周", patient_age=58,
        patient_sex="female", health_consent=True,
    )
    Consent.objects.filter(case=case).delete()  # as the intake was before consents were kept
    migration.forwards(django_apps, None)
    consent = Consent.objects.get(case=case)
    assert consent.text.version == 1
    assert consent.channel == ConsentChannel.MIGRATED and consent.language == ""
    assert consent.given_at == MedicalIntake.objects.get(case=case).health_consent_at
    assert consent.text.agree_en == (
        "I agree that the doctors of this service read and keep the health information and documents I send, "
        "only to answer this consultation."
    )

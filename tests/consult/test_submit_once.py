"""Every page form that creates something is done once however often it is sent: it carries a
one-time key, and a resend with that key gets the first answer (the same redirect, the same
message) instead of a second record, claim or poster."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from consult import services
from consult.models import Case, IdempotencyKey, Poster, Professional, Skill, Status, User
from consult.services import idempotency
from legal.models import EmployerContact

FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S)
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
# Forms that create nothing: they need no key.
KEYLESS = ("set_language", "logout", "set_on_duty", "/i18n/", "/display/")


def post_forms(page: str) -> dict[str, str]:
    """Every POST form of a page by its action, with its HTML."""
    forms = {}
    for form in FORM.findall(page):
        if 'method="post"' in form:
            action = re.search(r'action="([^"]*)"', form)
            forms[action.group(1) if action else ""] = form
    return forms


def key_of(form: str) -> str:
    (key,) = KEY.findall(form)
    return key


def en(message: str) -> str:
    with translation.override("en"):
        return translation.gettext(message)


@pytest.fixture
def dispute(alice: User, sick_pay: Skill, lawyer: Professional) -> Case:
    """Alice's sick-pay dispute, accepted by the lawyer: the page shows the lawyer's record forms."""
    case = services.case_submit(resident=alice, skill=sick_pay, description="病假工资少发。")
    return services.case_accept(case=case, professional=lawyer)


def test_every_creating_form_of_the_case_page_carries_its_own_key(
    dispute: Case, lawyer: Professional, login: Callable[..., Client]
) -> None:
    page = login(lawyer.user).get(reverse("case_detail", args=[dispute.reference])).content.decode()

    forms = {action: form for action, form in post_forms(page).items() if not any(k in action for k in KEYLESS)}

    for record in ("contact", "session", "outcome", "hours"):
        assert reverse("legal:record", args=[dispute.reference, record]) in forms
    assert reverse("document_upload", args=[dispute.reference]) in forms
    keys = [key_of(form) for form in forms.values()]
    assert len(set(keys)) == len(keys)


def test_it_records_a_contact_once_when_the_form_is_sent_twice(
    dispute: Case, lawyer: Professional, login: Callable[..., Client]
) -> None:
    client = login(lawyer.user, "en")
    url = reverse("legal:record", args=[dispute.reference, "contact"])
    page = client.get(reverse("case_detail", args=[dispute.reference])).content.decode()
    data = {"day": "2026-11-20", "channel": "phone", "result": "人事部答应下周回复。"}
    data["idempotency_key"] = key_of(post_forms(page)[url])

    first = client.post(url, data)
    again = client.post(url, data, follow=True)

    assert EmployerContact.objects.filter(case=dispute).count() == 1
    assert again.redirect_chain == [(first["Location"], 302)]
    shown = html.unescape(again.content.decode())
    assert en("The contact with the employer is recorded.") in shown


def test_it_claims_one_case_when_take_next_is_clicked_twice(
    alice: User, bob: User, respiratory: Skill, doctor: Professional, login: Callable[..., Client]
) -> None:
    services.professional_set_on_duty(professional=doctor, on_duty=False)
    waiting = [services.case_submit(resident=r, skill=respiratory, description="咳嗽。") for r in (alice, bob)]
    # Back on duty by the flag: through the service both cases would be handed to them at once.
    Professional.objects.filter(pk=doctor.pk).update(on_duty=True)
    client = login(doctor.user)
    page = client.get(reverse("work_queue")).content.decode()
    key = key_of(post_forms(page)[reverse("take_next")])

    first = client.post(reverse("take_next"), {"idempotency_key": key})
    again = client.post(reverse("take_next"), {"idempotency_key": key})

    assert first["Location"] == again["Location"]
    statuses = sorted(Case.objects.filter(pk__in=[c.pk for c in waiting]).values_list("status", flat=True))
    assert statuses == sorted([Status.ACTIVE, Status.WAITING])


def test_it_makes_one_poster_when_the_form_is_sent_twice(
    coordinator: User, respiratory: Skill, login: Callable[..., Client]
) -> None:
    client = login(coordinator)
    key = key_of(post_forms(client.get(reverse("posters")).content.decode())[""])
    data = {"skill": respiratory.pk, "place": "青山村村委会", "idempotency_key": key}

    first = client.post(reverse("posters"), data)
    again = client.post(reverse("posters"), data)

    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert Poster.objects.count() == 1


def test_it_records_a_changed_form_sent_again_from_a_page_the_browser_kept(
    dispute: Case, lawyer: Professional, login: Callable[..., Client]
) -> None:
    # Back to the form after sending it: the page still holds the key it was sent with. What is
    # changed there and sent is a new record, not a resend whose changes would be dropped.
    client = login(lawyer.user)
    url = reverse("legal:record", args=[dispute.reference, "contact"])
    data = {"day": "2026-11-20", "channel": "phone", "result": "人事部答应下周回复。", "idempotency_key": "k" * 32}
    client.post(url, data)

    changed = client.post(url, {**data, "channel": "letter", "result": "寄出调解邀请函。"})

    assert changed.status_code == 302
    assert "Idempotent-Replay" not in changed
    assert sorted(EmployerContact.objects.filter(case=dispute).values_list("channel", flat=True)) == [
        "letter", "phone"
    ]


def test_it_says_the_form_is_still_being_handled_while_the_first_send_runs(
    dispute: Case, lawyer: Professional, login: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reverse("legal:record", args=[dispute.reference, "contact"])
    data = {"day": "2026-11-20", "channel": "phone", "result": "已联系。", "idempotency_key": "s" * 32}
    real_claim = idempotency.idempotency_claim

    def first_send_still_running(**kwargs: Any) -> Any:
        # The first send took this very key and content and has not answered yet.
        IdempotencyKey.objects.get_or_create(
            user=kwargs["user"], key=kwargs["key"], defaults={"endpoint": url, "status": idempotency.PENDING}
        )
        return real_claim(**kwargs, wait=0.2)

    monkeypatch.setattr(idempotency, "idempotency_claim", first_send_still_running)

    response = login(lawyer.user, "en").post(url, data)

    assert response.status_code == 409
    message = "This form was already sent and is still being handled. Please wait a moment and look again."
    assert en(message) in html.unescape(response.content.decode())
    assert not EmployerContact.objects.exists()


def test_it_runs_a_form_sent_without_a_key_as_before(
    dispute: Case, lawyer: Professional, login: Callable[..., Client]
) -> None:
    # Pages cached before the key existed, and scripts that post the form themselves.
    client = login(lawyer.user)
    url = reverse("legal:record", args=[dispute.reference, "contact"])
    data: dict[str, Any] = {"day": "2026-11-20", "channel": "phone", "result": "已联系。"}

    for _ in range(2):
        assert client.post(url, data).status_code == 302

    assert EmployerContact.objects.filter(case=dispute).count() == 2


def test_it_forgets_keys_after_two_days_and_keeps_the_recent_ones(alice: User) -> None:
    now = timezone.now()
    for key, age in (("old", timedelta(hours=49)), ("recent", timedelta(hours=47))):
        IdempotencyKey.objects.create(user=alice, key=key, endpoint="/x/", status=302, created_at=now - age)
    out = io.StringIO()

    call_command("sweep_keys", stdout=out)

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    assert out.getvalue().strip() == "1 key(s) removed"

"""Every staff read of a case is on its timeline, once per person and case in a while, and the
resident sees who looked; the admin keeps the history of what staff edit; nothing deletes a case
or its trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from consult.models import Case, CaseEvent, Document, Message, Professional, Skill, User, Verb
from consult.services.reads import READ_RECORD_WINDOW
from tests.conftest import PASSWORD, second_factor_fields

API = "/api/v1/"


def reads(case: Case) -> list[tuple[int | None, str]]:
    return list(CaseEvent.objects.filter(case=case, verb=Verb.VIEWED).values_list("actor", "detail__role"))


def test_it_records_each_staff_read_once_in_a_while_and_shows_the_resident_who_looked(
    case: Case, alice: User, doctor: Professional, coordinator: User, login: Callable[..., Client],
) -> None:
    url = reverse("case_detail", args=[case.reference])
    coordinator_client = login(coordinator)
    for _ in range(3):  # reloads
        assert coordinator_client.get(url).status_code == 200
    login(doctor.user).get(url)
    login(alice).get(url)  # the resident's own reads are not "looked at"

    assert reads(case) == [(coordinator.pk, "coordinator"), (doctor.user.pk, "doctor")]

    page = login(alice).get(url).content.decode()
    looked = page[page.index('id="readers"'):]
    assert "谁查看了我的案件" in looked
    assert "周协调 (协调员)" in looked and f"{doctor.user.name} (医生)" in looked
    # Not on the timeline's own list: that stays what happened to the case.
    timeline = page[page.index('id="timeline"'):page.index('id="readers"')]
    assert "查看了案件" not in timeline

    # After the window, a read is a new line.
    CaseEvent.objects.filter(case=case, verb=Verb.VIEWED).update(
        created_at=timezone.now() - READ_RECORD_WINDOW - timedelta(minutes=1)
    )
    coordinator_client.get(url)
    assert reads(case).count((coordinator.pk, "coordinator")) == 2


def test_it_records_a_staff_read_through_the_api_and_the_admin(
    case: Case, coordinator: User, login: Callable[..., Client]
) -> None:
    token = APIClient().post(
        f"{API}auth/token/", {"phone": coordinator.phone, "password": PASSWORD, **second_factor_fields(coordinator)},
        format="json",
    ).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    detail = api.get(f"{API}cases/{case.reference}/")
    assert detail.status_code == 200
    assert reads(case) == [(coordinator.pk, "coordinator")]

    CaseEvent.objects.filter(case=case, verb=Verb.VIEWED).delete()
    assert login(coordinator).get(reverse("admin:consult_case_change", args=[case.pk])).status_code == 200
    assert reads(case) == [(coordinator.pk, "coordinator")]


def test_it_offers_no_deletion_of_a_case_or_its_trail_in_the_admin_or_the_api(
    case: Case, coordinator: User, login: Callable[..., Client], alice: User,
) -> None:
    Message.objects.create(case=case, seq=case.last_seq + 100, sender=alice, body="你好")
    client = login(coordinator)
    document_count, message_count = Document.objects.count(), Message.objects.filter(case=case).count()

    assert client.get(reverse("admin:consult_case_delete", args=[case.pk])).status_code == 403
    listing = client.get(reverse("admin:consult_case_changelist")).content.decode()
    assert "delete_selected" not in listing
    bulk = client.post(
        reverse("admin:consult_case_changelist"),
        {"action": "delete_selected", "_selected_action": [case.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    event = CaseEvent.objects.filter(case=case).first()
    assert event is not None
    assert client.get(reverse("admin:consult_caseevent_delete", args=[event.pk])).status_code == 403
    api = APIClient()
    api.force_authenticate(alice)
    assert api.delete(f"{API}cases/{case.reference}/").status_code == 405

    assert Case.objects.filter(pk=case.pk).exists()
    assert Message.objects.filter(case=case).count() == message_count
    assert Document.objects.count() == document_count
    from django.contrib import admin

    for model in (Case, CaseEvent, Document):
        request = type("R", (), {"user": coordinator})()
        assert not admin.site._registry[model].has_delete_permission(request)
    assert Message not in admin.site._registry


@pytest.mark.parametrize("changed", ["skill", "user"])
def test_it_keeps_the_history_of_an_admin_edit_with_who_made_it(
    changed: str, respiratory: Skill, doctor: Professional, coordinator: User, login: Callable[..., Client]
) -> None:
    client = login(coordinator)
    if changed == "skill":
        url = reverse("admin:consult_skill_change", args=[respiratory.pk])
        page = client.get(url)
        form = page.context["adminform"].form
        data = {k: v for k, v in form.initial.items() if v is not None}
        data.update(response_hours=6, required_documents="[]", materials_zh="", materials_en="")
        assert client.post(url, data).status_code == 302
        history = respiratory.history.all()  # type: ignore[attr-defined]
        assert history.first().response_hours == 6
    else:
        user = doctor.user
        user.role = "coordinator"
        user.domains = ["medical"]
        user.save()
        history = user.history.all()  # type: ignore[attr-defined]
        assert history.first().role == "coordinator"
        url = reverse("admin:consult_user_history", args=[user.pk])
        assert client.get(url).status_code == 200
        return
    assert history.first().history_user == coordinator
    assert client.get(reverse("admin:consult_skill_history", args=[respiratory.pk])).status_code == 200


def test_it_keeps_no_history_row_for_a_log_in_nor_any_password_hash(coordinator: User) -> None:
    before = coordinator.history.count()  # type: ignore[attr-defined]
    client = Client()
    client.post(reverse("login"), {"username": coordinator.phone, "password": PASSWORD})

    assert coordinator.history.count() == before  # type: ignore[attr-defined]
    assert "password" not in {f.name for f in coordinator.history.model._meta.fields}  # type: ignore[attr-defined]

"""The labour-dispute intake before it is sent: the estimate the worker sees while typing, and an
amount owed that is optional and stays empty on the record when left empty."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from consult.models import Case, Professional, Skill, User
from legal import estimate
from legal.models import CityRates, LegalIntake
from tests.legal.conftest import body, intake_post, intake_url

PREVIEW = reverse("legal:estimate_preview")
FIGURES: dict[str, str] = {"city": "杭州", "monthly_wage": "4000", "amount_received": "802", "sick_days": "20"}


def test_it_records_no_amount_owed_when_the_worker_leaves_it_empty(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    response = login(alice).post(intake_url(sick_pay), intake_post(sick_pay, amount_claimed=""))

    assert response.status_code == 302
    intake = LegalIntake.objects.get(case=Case.objects.get(resident=alice))
    assert intake.amount_claimed is None
    page = body(login(alice).get(response["Location"]))
    assert "0.00" not in page.split("病假工资", 1)[-1].split("元", 1)[0]
    assert "未填写" in page


def test_it_keeps_the_amount_owed_the_worker_wrote(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    login(alice).post(intake_url(sick_pay), intake_post(sick_pay, amount_claimed="1,400元"))

    assert LegalIntake.objects.get(case__resident=alice).amount_claimed == Decimal("1400.00")


def test_it_shows_the_estimate_for_the_figures_typed_so_far(
    alice: User, sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    expected = estimate.sick_pay(wage=Decimal("4000"), sick_days=20, received=Decimal("802"), rates=hangzhou)

    page = body(login(alice).get(PREVIEW, {"skill": str(sick_pay.pk), **FIGURES}))

    assert f'data-owed="{expected.owed}"' in page
    assert str(expected.entitled) in page
    assert not Case.objects.exists()


def test_it_shows_no_estimate_while_a_figure_it_needs_is_missing(
    alice: User, sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    client = login(alice)

    assert body(client.get(PREVIEW, {"skill": str(sick_pay.pk), **FIGURES, "sick_days": ""})).strip() == ""
    assert body(client.get(PREVIEW, {"skill": str(sick_pay.pk), **FIGURES, "monthly_wage": "abc"})).strip() == ""
    assert body(client.get(PREVIEW, {**FIGURES})).strip() == ""


def test_it_refuses_the_estimate_to_a_visitor_not_logged_in(sick_pay: Skill, hangzhou: CityRates) -> None:
    response = Client().get(PREVIEW, {"skill": str(sick_pay.pk), **FIGURES})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_intake_as_two_steps_with_the_estimate_box_before_send(
    alice: User, sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    page = body(login(alice).get(intake_url(sick_pay)))

    assert page.count('class="step"') == 2
    send = page.index('<button type="submit" class="main-action">')
    assert page.index('id="estimate-preview"') < page.index('name="amount_claimed"') < send
    assert 'name="amount_claimed" value="0' not in page

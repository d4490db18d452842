"""The labour-dispute intake page: what a worker must give, what is refused and why, and what the
case holds once it is open (the facts, the evidence, the claim estimate).

Messages are compared in English, word for word as legal/forms.py and consult/intake.py give them.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage
from django.test import Client
from django.urls import reverse

from consult import files
from consult.errors import CaseError
from consult.models import Case, Document, DocumentKind, Professional, Skill, Status, User
from legal import estimate
from legal.models import CityRates, ClaimEstimate, LegalIntake
from legal.services import legal_case_submit
from tests.consult import files_corpus as corpus
from tests.legal.conftest import (
    EMPLOYER,
    body,
    en,
    intake_post,
    intake_url,
    messages_of,
    staged_tokens,
)

NOT_FIGURES = "Write the amount in figures, for example 802 or 1650.50."
NEGATIVE = "The amount cannot be negative."
TOO_LARGE = "This amount is too large. Please check it."
FEN = "Use at most 2 digits after the decimal point (fen)."
NO_CONSENT = "Mediation is not possible without sharing the details with the employer."
MISSING = "Still missing: %(list)s. Add them above, or tick this box to send without them."
ESTIMATE_NOTE = "This is an estimate: the lawyer will check it with you."


def error_html(message: str) -> str:
    return f'<p class="error" role="alert">{message}</p>'


def assert_nothing_created() -> None:
    assert not Case.objects.exists()
    assert not LegalIntake.objects.exists()
    assert not ClaimEstimate.objects.exists()
    assert not Document.objects.exists()


def assert_values_kept(page: str) -> None:
    """The re-shown form still holds what the worker typed."""
    assert f'value="{EMPLOYER}"' in page
    assert 'value="纺织厂挡车工"' in page
    assert "病假20天，公司只发了802元，低于法定标准。</textarea>" in page
    assert '<option value="杭州" selected>' in page


# --- a case opened -----------------------------------------------------------------------------


def test_it_opens_the_dispute_with_its_facts_evidence_and_lawyer(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    response = login(alice).post(intake_url(sick_pay), intake_post(sick_pay))

    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("case_detail", args=[case.reference])
    assert (case.resident, case.skill, case.assignee, case.status) == (alice, sick_pay, lawyer, Status.ASSIGNED)
    intake = LegalIntake.objects.get(case=case)
    assert (intake.employer_name, intake.employer_phone, intake.city) == (EMPLOYER, "0571-82000000", "杭州")
    assert (intake.employment_start, intake.employment_end) == (date(2019, 3, 1), None)
    assert (intake.monthly_wage, intake.amount_received, intake.amount_claimed) == (
        Decimal("4000.00"), Decimal("802.00"), Decimal("1400.00")
    )
    assert intake.sick_days == 20
    assert intake.share_consent_at is not None
    assert sorted(case.documents.values_list("kind", "original_name")) == [
        (DocumentKind.PAYSLIP, "工资条.pdf"), (DocumentKind.SICK_LEAVE, "病假证明.jpg")
    ]


def test_it_stores_the_claim_estimate_on_the_case_at_intake(
    open_case: Callable[..., Case], hangzhou: CityRates
) -> None:
    case = open_case()

    claim = ClaimEstimate.objects.get(case=case)
    expected = estimate.sick_pay(wage=Decimal("4000"), sick_days=20, received=Decimal("802"), rates=hangzhou)
    assert (claim.rule, claim.rates, claim.entitled, claim.owed) == (
        "sick_pay", hangzhou, Decimal("2206.80"), Decimal("1404.80")
    )
    assert claim.steps == expected.steps
    assert claim.steps[-1] == {
        "label": "Received %(received)s yuan, so still owed: %(owed)s yuan.",
        "params": {"received": "802", "owed": "1404.80"},
    }


@pytest.mark.parametrize("who", ["alice", "lawyer"])
def test_it_shows_the_estimate_with_its_steps_and_says_it_is_only_an_estimate(
    open_case: Callable[..., Case], login: Callable[..., Client], request: pytest.FixtureRequest, who: str
) -> None:
    case = open_case()
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person

    page = body(login(user, "en").get(reverse("case_detail", args=[case.reference])))

    assert "Entitled to 2206.80 yuan; still owed about 1404.80 yuan." in page
    for step in [
        "Sick pay is 60% of the wage: 4000 × 60% = 2400.00 yuan a month.",
        "It may not be lower than 80% of the minimum wage: 2490.00 × 80% = 1992.00 yuan a month.",
        "A day is 1/21.75 of a month: 2400.00 ÷ 21.75 = 110.34 yuan.",
        "20 days × 110.34 = 2206.80 yuan.",
        "Received 802 yuan, so still owed: 1404.80 yuan.",
    ]:
        assert f"<li>{step}</li>" in page
    assert en(ESTIMATE_NOTE) in page
    assert "杭州" in page


def test_it_opens_the_case_without_an_estimate_when_the_city_has_no_rates_yet(
    open_case: Callable[..., Case], login: Callable[..., Client], alice: User
) -> None:
    # Wenzhou's figures are entered ahead of time: the city can be chosen, but no rates apply today.
    CityRates.objects.create(
        city="温州", effective_from=date(2999, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("9000")
    )

    case = open_case(city="温州")

    assert LegalIntake.objects.get(case=case).city == "温州"
    assert not ClaimEstimate.objects.filter(case=case).exists()
    page = body(login(alice, "en").get(reverse("case_detail", args=[case.reference])))
    assert en(ESTIMATE_NOTE) not in page
    assert 'id="estimate"' not in page


# --- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("monthly_wage", "-4000", NEGATIVE, id="negative"),
        pytest.param("monthly_wage", "四千", NOT_FIGURES, id="words"),
        pytest.param("monthly_wage", "abc", NOT_FIGURES, id="letters"),
        pytest.param("amount_received", "NaN", NOT_FIGURES, id="not-a-number"),
        pytest.param("monthly_wage", "100000000", TOO_LARGE, id="a-hundred-million"),
        pytest.param("amount_claimed", "1e12", TOO_LARGE, id="exponent"),
        pytest.param("amount_received", "802.345", FEN, id="three-decimals"),
    ],
)
def test_it_refuses_a_bad_amount_with_a_clear_reason_and_keeps_the_rest(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client],
    field: str, value: str, message: str,
) -> None:
    response = login(alice, "en").post(intake_url(sick_pay), intake_post(sick_pay, **{field: value}))

    assert response.status_code == 200
    page = body(response)
    assert response.context["form"].errors == {field: [message]}
    # Said once, beside its field.
    assert page.count(error_html(en(message))) == 1
    assert f'name="{field}" value="{value}"' in page
    assert_values_kept(page)
    assert_nothing_created()


@pytest.mark.parametrize(
    ("claimed", "received", "expected_claimed", "expected_received"),
    [
        pytest.param("1,650.50", "802元", "1650.50", "802", id="thousands-comma-and-yuan-sign"),
        pytest.param("1，650.50", " 802 元 ", "1650.50", "802", id="full-width-comma-and-spaces"),
        pytest.param("1650.5", "0", "1650.50", "0", id="one-decimal-and-zero"),
    ],
)
def test_it_accepts_amounts_written_the_way_people_write_them(
    open_case: Callable[..., Case], claimed: str, received: str, expected_claimed: str, expected_received: str
) -> None:
    case = open_case(amount_claimed=claimed, amount_received=received)

    intake = LegalIntake.objects.get(case=case)
    assert intake.amount_claimed == Decimal(expected_claimed)
    assert intake.amount_received == Decimal(expected_received)
    assert ClaimEstimate.objects.get(case=case).owed == Decimal("2206.80") - Decimal(expected_received)


# --- consent and materials ---------------------------------------------------------------------


def test_it_requires_consent_to_share_the_details_with_the_employer(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    response = login(alice, "en").post(intake_url(sick_pay), intake_post(sick_pay, share_consent=None))

    assert response.status_code == 200
    assert response.context["form"].errors == {"share_consent": [NO_CONSENT]}
    page = body(response)
    assert error_html(en(NO_CONSENT)) in page
    assert_values_kept(page)
    assert_nothing_created()


def test_it_refuses_to_open_a_dispute_without_consent_whoever_calls_the_service(
    alice: User, sick_pay: Skill, hangzhou: CityRates
) -> None:
    with pytest.raises(CaseError) as refused:
        legal_case_submit(
            resident=alice, skill=sick_pay, share_consent=False, job_title="挡车工",
            employment_start=date(2019, 3, 1), employer_name=EMPLOYER, what_happened="…",
            monthly_wage=Decimal("4000"), desired_outcome="…", city="杭州", sick_days=20,
        )

    assert refused.value.messages == ["Consent to share the details with the employer is required for mediation."]
    assert_nothing_created()


def test_it_names_the_missing_materials_and_keeps_the_parked_payslip(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client],
    private_files: Path,
) -> None:
    client = login(alice, "en")

    shown = client.post(intake_url(sick_pay), intake_post(sick_pay, files_sick_leave=None))

    assert shown.status_code == 200
    missing = en(MISSING, list="Sick-leave note")
    assert shown.context["form"].errors == {"materials_later": [missing]}
    page = body(shown)
    assert error_html(missing) in page
    assert "✓ 工资条.pdf" in page
    assert_values_kept(page)
    assert_nothing_created()
    [token] = staged_tokens(shown)
    assert len(files.stored_keys("staging")) == 1

    # Ticked "send without them": the payslip parked by the first try goes with the case.
    opened = client.post(
        intake_url(sick_pay),
        intake_post(sick_pay, files_payslip=None, files_sick_leave=None, staged=token, materials_later="on"),
    )

    assert opened.status_code == 302
    case = Case.objects.get()
    document = case.documents.get()
    assert (document.kind, document.original_name) == (DocumentKind.PAYSLIP, "工资条.pdf")
    with files.open_stored(document.storage_key) as handle:
        assert handle.read() == corpus.pdf(title="Payslip")
    assert files.stored_keys("staging") == []


def test_it_lists_every_missing_material(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    response = login(alice, "en").post(
        intake_url(sick_pay), intake_post(sick_pay, files_payslip=None, files_sick_leave=None)
    )

    assert response.context["form"].errors == {
        "materials_later": [en(MISSING, list="Payslip or bank record、Sick-leave note")]
    }
    assert_nothing_created()


def test_it_opens_the_case_without_the_materials_when_asked_to(
    open_case: Callable[..., Case],
) -> None:
    case = open_case(files_payslip=None, files_sick_leave=None, materials_later="on")

    assert not case.documents.exists()
    assert ClaimEstimate.objects.filter(case=case).exists()


def test_it_keeps_the_parked_files_through_a_second_mistake(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    client = login(alice, "en")
    first = client.post(intake_url(sick_pay), intake_post(sick_pay, monthly_wage="-1"))
    tokens = staged_tokens(first)
    assert len(tokens) == 2

    second = client.post(
        intake_url(sick_pay),
        intake_post(sick_pay, files_payslip=None, files_sick_leave=None, staged=tokens, share_consent=None),
    )
    assert sorted(staged_tokens(second)) == sorted(tokens)
    assert_nothing_created()

    client.post(intake_url(sick_pay), intake_post(sick_pay, files_payslip=None, files_sick_leave=None, staged=tokens))

    assert sorted(Case.objects.get().documents.values_list("kind", flat=True)) == [
        DocumentKind.PAYSLIP, DocumentKind.SICK_LEAVE
    ]


# --- who may open one --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["doctor", "lawyer", "coordinator"])
def test_it_sends_a_non_resident_away_from_the_intake_and_opens_nothing(
    sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client], request: pytest.FixtureRequest, who: str
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person
    client = login(user, "en")

    shown = client.get(intake_url(sick_pay), follow=True)
    sent = client.post(intake_url(sick_pay), intake_post(sick_pay), follow=True)

    for response in (shown, sent):
        assert response.redirect_chain == [(reverse("home"), 302)]
        assert messages_of(response) == [en("Only residents open cases. Please log in with a resident account.")]
    assert_nothing_created()


def test_it_sends_an_anonymous_visitor_to_the_login_page(
    sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    response = login(None).post(intake_url(sick_pay), intake_post(sick_pay))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    assert_nothing_created()


def test_it_offers_amount_boxes_a_browser_lets_hold_commas_and_the_yuan_sign(
    alice: User, sick_pay: Skill, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    # A type="number" box would be emptied by the browser when it holds "1,650.50" or "802元".
    page = body(login(alice).get(intake_url(sick_pay)))

    for field in ("monthly_wage", "amount_received", "amount_claimed"):
        assert f'<input type="text" name="{field}"' in page
    assert page.count('inputmode="decimal"') >= 3


# --- sent once: double clicks and a file store that fails after a parked file ----------------

STORE_DOWN = (
    "The file store cannot be reached right now, so your case has not been sent yet. "
    "Your answers and files are kept here: please press Send again in a few minutes."
)


def form_key(response: Any) -> str:
    (key,) = re.findall(r'name="idempotency_key" value="([^"]+)"', response.content.decode())
    return key


def test_it_opens_one_dispute_when_the_same_form_is_sent_twice(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client]
) -> None:
    client = login(alice, "en")
    key = form_key(client.get(intake_url(sick_pay)))

    first = client.post(intake_url(sick_pay), intake_post(sick_pay, idempotency_key=key))
    again = client.post(intake_url(sick_pay), intake_post(sick_pay, idempotency_key=key))

    case = Case.objects.get()
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("case_detail", args=[case.reference])
    assert again["Idempotent-Replay"] == "true"
    assert (LegalIntake.objects.count(), ClaimEstimate.objects.count(), case.documents.count()) == (1, 1, 2)


def test_it_opens_nothing_and_keeps_the_parked_evidence_when_the_store_fails(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = login(alice, "en")
    key = form_key(client.get(intake_url(sick_pay)))
    shown = client.post(intake_url(sick_pay), intake_post(sick_pay, idempotency_key=key, files_sick_leave=None))
    [token] = staged_tokens(shown)
    resend = intake_post(
        sick_pay, idempotency_key=key, files_payslip=None, files_sick_leave=None, staged=token, materials_later="on"
    )

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EIO, "the file store is not answering")

    with monkeypatch.context() as outage:
        outage.setattr(FileSystemStorage, "_open", unreachable)
        failed = client.post(intake_url(sick_pay), resend)

    assert failed.status_code == 503
    assert en(STORE_DOWN) in messages_of(failed)
    assert_values_kept(body(failed))
    assert staged_tokens(failed) == [token]
    assert_nothing_created()

    opened = client.post(intake_url(sick_pay), resend)

    assert opened.status_code == 302
    document = Case.objects.get().documents.get()
    assert (document.kind, document.original_name) == (DocumentKind.PAYSLIP, "工资条.pdf")
    assert files.stored_keys("staging") == []

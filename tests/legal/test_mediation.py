"""The lawyer's records on a dispute: contacts with the employer, sessions, the outcome, payments to
the worker, hours charged to the legal-aid fund; and who may write or see any of it.

Every record goes through the one `legal:record` endpoint, as the case page's forms send it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from consult import services as core
from consult.errors import CaseError
from consult.models import Case, CaseEvent, Professional, Status, User, Verb
from legal import services
from legal.models import EmployerContact, LegalAidFund, MediationOutcome, MediationSession, Result, WorkLog
from tests.legal.conftest import body, en, messages_of

D = Decimal
CONTACT = {"day": "2024-05-06", "channel": "phone", "result": "人事部刘经理同意下周面谈。"}
SESSION = {
    "day": "2024-05-13", "mode": "in_person", "attendees": "王秀英、刘经理、张律师", "notes": "公司同意补发差额。"
}
SETTLED = {"result": Result.SETTLED, "amount_agreed": "1404.80", "payment_due": "2024-05-31", "terms": "一次性付清。"}
HOURS = {"day": "2024-05-13", "hours": "1.5", "note": "调解"}
PAYMENT = {"amount": "800", "day": "2024-05-20"}
RECORDS = {"contact": CONTACT, "session": SESSION, "outcome": SETTLED, "hours": HOURS}

ONLY_ASSIGNED = "Only the lawyer the case is assigned to can record this."
NEEDS_SETTLEMENT = "A settlement needs the amount agreed and the date it is due."
NEEDS_DEADLINE = "A referral to arbitration needs the deadline to file."
SETTLEMENT_FIRST = "Record the settlement before its payments."
OUTCOME_FIRST = "Record the outcome of the mediation before marking the case resolved."


def record(client: Client, case: Case, what: str, data: dict[str, Any]) -> Any:
    return client.post(reverse("legal:record", args=[case.reference, what]), data, follow=True)


def user_of(request: pytest.FixtureRequest, who: str) -> User:
    person = request.getfixturevalue(who)
    return person.user if isinstance(person, Professional) else person


def assert_nothing_recorded(case: Case) -> None:
    assert not EmployerContact.objects.filter(case=case).exists()
    assert not MediationSession.objects.filter(case=case).exists()
    assert not MediationOutcome.objects.filter(case=case).exists()
    assert not WorkLog.objects.filter(case=case).exists()
    assert not case.events.filter(
        verb__in=[Verb.EMPLOYER_CONTACTED, Verb.MEDIATION_HELD, Verb.OUTCOME_RECORDED, Verb.PAYMENT_RECEIVED]
    ).exists()


@pytest.fixture
def as_lawyer(lawyer: Professional, login: Callable[..., Client]) -> Client:
    return login(lawyer.user, "en")


# --- the lawyer's records ----------------------------------------------------------------------


def test_it_records_the_contacts_and_sessions_of_the_assigned_lawyer(
    active_case: Case, lawyer: Professional, as_lawyer: Client, alice: User, login: Callable[..., Client]
) -> None:
    contacted = record(as_lawyer, active_case, "contact", CONTACT)
    held = record(as_lawyer, active_case, "session", SESSION)

    assert contacted.redirect_chain == [(reverse("case_detail", args=[active_case.reference]), 302)]
    assert messages_of(contacted) == [en("The contact with the employer is recorded.")]
    assert messages_of(held) == [en("The mediation session is recorded.")]
    contact = EmployerContact.objects.get(case=active_case)
    assert (contact.recorded_by, contact.date, contact.channel, contact.result) == (
        lawyer.user, date(2024, 5, 6), "phone", CONTACT["result"]
    )
    session = MediationSession.objects.get(case=active_case)
    assert (session.recorded_by, session.date, session.mode, session.attendees, session.notes) == (
        lawyer.user, date(2024, 5, 13), "in_person", SESSION["attendees"], SESSION["notes"]
    )
    # (Besides the line of the lawyer's read of the case page the form returned to.)
    records = active_case.events.filter(actor=lawyer.user).exclude(verb=Verb.VIEWED)
    assert list(records.values_list("verb", "detail")) == [
        (Verb.ACCEPTED, {}),
        (Verb.EMPLOYER_CONTACTED, {"channel": "phone", "date": "2024-05-06"}),
        (Verb.MEDIATION_HELD, {"mode": "in_person", "date": "2024-05-13"}),
    ]
    # The worker follows the mediation on the case page.
    page = body(login(alice, "en").get(reverse("case_detail", args=[active_case.reference])))
    assert CONTACT["result"] in page
    assert SESSION["attendees"] in page


def test_it_refuses_records_before_the_lawyer_accepts_the_case(
    open_case: Callable[..., Case], lawyer: Professional, login: Callable[..., Client]
) -> None:
    case = open_case()
    assert case.status == Status.ASSIGNED

    response = record(login(lawyer.user, "en"), case, "contact", CONTACT)

    assert messages_of(response) == [en("Accept the case before recording the mediation.")]
    assert_nothing_recorded(case)


def test_it_refuses_to_resolve_the_case_until_an_outcome_is_recorded(
    active_case: Case, as_lawyer: Client
) -> None:
    resolve = reverse("case_action", args=[active_case.reference, "resolve"])

    refused = as_lawyer.post(resolve, follow=True)

    assert messages_of(refused) == [en(OUTCOME_FIRST)]
    active_case.refresh_from_db()
    assert active_case.status == Status.ACTIVE

    record(as_lawyer, active_case, "outcome", SETTLED)
    resolved = as_lawyer.post(resolve, follow=True)

    assert messages_of(resolved) == [en("The case is marked resolved.")]
    active_case.refresh_from_db()
    assert active_case.status == Status.RESOLVED


def test_it_records_a_settlement_with_its_amount_and_due_date(active_case: Case, as_lawyer: Client) -> None:
    response = record(as_lawyer, active_case, "outcome", SETTLED)

    assert messages_of(response) == [en("The outcome is recorded.")]
    outcome = MediationOutcome.objects.get(case=active_case)
    assert (outcome.result, outcome.amount_agreed, outcome.payment_due, outcome.terms) == (
        Result.SETTLED, D("1404.80"), date(2024, 5, 31), "一次性付清。"
    )
    assert (outcome.amount_received, outcome.received_on) == (D("0"), None)
    event = active_case.events.get(verb=Verb.OUTCOME_RECORDED)
    assert event.detail == {"result": "settled", "amount_agreed": "1404.80"}


def test_it_corrects_the_outcome_in_place(active_case: Case, as_lawyer: Client) -> None:
    record(as_lawyer, active_case, "outcome", SETTLED)
    record(as_lawyer, active_case, "outcome", {**SETTLED, "result": Result.PARTLY, "amount_agreed": "1000"})

    outcome = MediationOutcome.objects.get(case=active_case)
    assert (outcome.result, outcome.amount_agreed) == (Result.PARTLY, D("1000.00"))


@pytest.mark.parametrize("result", [Result.SETTLED, Result.PARTLY])
@pytest.mark.parametrize(
    "missing",
    [
        pytest.param({"amount_agreed": ""}, id="no-amount"),
        pytest.param({"payment_due": ""}, id="no-due-date"),
        pytest.param({"amount_agreed": "", "payment_due": ""}, id="neither"),
    ],
)
def test_it_refuses_a_settlement_without_its_amount_or_due_date(
    active_case: Case, as_lawyer: Client, result: str, missing: dict[str, str]
) -> None:
    response = record(as_lawyer, active_case, "outcome", {**SETTLED, "result": result, **missing})

    assert messages_of(response) == [en(NEEDS_SETTLEMENT)]
    assert_nothing_recorded(active_case)


def test_it_accepts_a_settlement_for_nothing_when_it_says_so(active_case: Case, as_lawyer: Client) -> None:
    # 0 yuan is an amount: "nothing more is owed" is a settlement the worker may accept.
    record(as_lawyer, active_case, "outcome", {**SETTLED, "amount_agreed": "0"})

    assert MediationOutcome.objects.get(case=active_case).amount_agreed == D("0")


def test_it_refuses_a_referral_to_arbitration_without_the_deadline_to_file(
    active_case: Case, as_lawyer: Client
) -> None:
    refused = record(as_lawyer, active_case, "outcome", {"result": Result.NOT_SETTLED, "arbitration_deadline": ""})

    assert messages_of(refused) == [en(NEEDS_DEADLINE)]
    assert_nothing_recorded(active_case)

    record(as_lawyer, active_case, "outcome", {"result": Result.NOT_SETTLED, "arbitration_deadline": "2025-05-01"})

    outcome = MediationOutcome.objects.get(case=active_case)
    assert (outcome.result, outcome.arbitration_deadline) == (Result.NOT_SETTLED, date(2025, 5, 1))


def test_it_refuses_a_bad_agreed_amount_with_the_yuan_fields_words(active_case: Case, as_lawyer: Client) -> None:
    response = record(as_lawyer, active_case, "outcome", {**SETTLED, "amount_agreed": "1404.805"})

    assert messages_of(response) == [
        f"{en('Amount agreed (yuan)')}: {en('Use at most 2 digits after the decimal point (fen).')}"
    ]
    assert_nothing_recorded(active_case)


# --- only the assigned lawyer ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "coordinator"])
def test_it_answers_404_to_a_record_by_someone_on_the_case_who_is_not_its_lawyer(
    active_case: Case, login: Callable[..., Client], request: pytest.FixtureRequest, who: str
) -> None:
    client = login(user_of(request, who), "en")

    for what, data in RECORDS.items():
        assert client.post(reverse("legal:record", args=[active_case.reference, what]), data).status_code == 404

    assert_nothing_recorded(active_case)


def test_it_refuses_a_record_by_another_lawyer_whoever_calls_the_service(
    active_case: Case, other_lawyer: Professional, fund: LegalAidFund
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: services.contact_add(
            case=active_case, professional=other_lawyer, day=date(2024, 5, 6), channel="phone", result="…"
        ),
        lambda: services.session_add(
            case=active_case, professional=other_lawyer, day=date(2024, 5, 6), mode="online", attendees="…",
            notes="…",
        ),
        lambda: services.outcome_record(
            case=active_case, professional=other_lawyer, result=Result.WITHDRAWN,
        ),
        lambda: services.work_log_add(case=active_case, professional=other_lawyer, day=date(2024, 5, 6), hours=D(1)),
    ]

    for call in calls:
        with translation.override("en"):
            with pytest.raises(CaseError) as refused:
                call()
            assert refused.value.messages == [ONLY_ASSIGNED]

    assert_nothing_recorded(active_case)


def test_it_answers_404_to_an_unknown_record(active_case: Case, as_lawyer: Client) -> None:
    response = as_lawyer.post(reverse("legal:record", args=[active_case.reference, "verdict"]), CONTACT)

    assert response.status_code == 404


# --- payments ----------------------------------------------------------------------------------


def test_it_refuses_a_payment_before_the_settlement(active_case: Case, as_lawyer: Client) -> None:
    before = record(as_lawyer, active_case, "payment", PAYMENT)
    record(as_lawyer, active_case, "outcome", {"result": Result.NOT_SETTLED, "arbitration_deadline": "2025-05-01"})
    not_settled = record(as_lawyer, active_case, "payment", PAYMENT)

    assert messages_of(before) == [en(SETTLEMENT_FIRST)]
    assert messages_of(not_settled) == [en(SETTLEMENT_FIRST)]
    outcome = MediationOutcome.objects.get(case=active_case)
    assert (outcome.amount_received, outcome.received_on) == (D("0"), None)
    assert not active_case.events.filter(verb=Verb.PAYMENT_RECEIVED).exists()


def test_it_adds_up_the_payments_received_under_the_settlement(
    active_case: Case, as_lawyer: Client, coordinator: User, login: Callable[..., Client]
) -> None:
    record(as_lawyer, active_case, "outcome", SETTLED)

    first = record(as_lawyer, active_case, "payment", PAYMENT)
    # The union's coordinator records the rest, paid at the office.
    record(login(coordinator, "en"), active_case, "payment", {"amount": "604.80", "day": "2024-05-28"})

    assert messages_of(first) == [en("The payment is recorded.")]
    outcome = MediationOutcome.objects.get(case=active_case)
    assert (outcome.amount_received, outcome.received_on) == (D("1404.80"), date(2024, 5, 28))
    assert list(active_case.events.filter(verb=Verb.PAYMENT_RECEIVED).values_list("actor__role", "detail")) == [
        ("lawyer", {"amount": "800", "date": "2024-05-20"}),
        ("coordinator", {"amount": "604.80", "date": "2024-05-28"}),
    ]


TOMORROW = "tomorrow"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"amount": "0"}, "Amount received (yuan): The amount must be more than zero.", id="zero"),
        pytest.param({"amount": "-5"}, "Amount received (yuan): The amount must be more than zero.", id="negative"),
        pytest.param(
            {"amount": "八百"}, "Amount received (yuan): Write the amount in figures, for example 802 or 1650.50.",
            id="words",
        ),
        pytest.param(
            {"day": TOMORROW},
            "Received on: This date is in the future.",
            id="future-date",
        ),
    ],
)
def test_it_refuses_a_payment_that_cannot_be_right(
    active_case: Case, as_lawyer: Client, data: dict[str, str], message: str
) -> None:
    record(as_lawyer, active_case, "outcome", SETTLED)

    # Tomorrow is reckoned when the test runs, not when it is collected: a run
    # that crosses midnight in Beijing would otherwise send today.
    if data.get("day") == TOMORROW:
        data = {"day": (timezone.localdate() + timedelta(days=1)).isoformat()}

    response = record(as_lawyer, active_case, "payment", {**PAYMENT, **data})

    assert messages_of(response) == [message]
    assert MediationOutcome.objects.get(case=active_case).amount_received == D("0")


def test_it_refuses_a_payment_recorded_by_the_worker(
    active_case: Case, as_lawyer: Client, alice: User, login: Callable[..., Client]
) -> None:
    record(as_lawyer, active_case, "outcome", SETTLED)

    response = record(login(alice, "en"), active_case, "payment", PAYMENT)

    assert messages_of(response) == [en("Only the assigned lawyer or a coordinator can record a payment.")]
    assert MediationOutcome.objects.get(case=active_case).amount_received == D("0")


# --- hours and the legal-aid fund ----------------------------------------------------------------


def test_it_charges_hours_to_the_fund_at_the_rate_of_the_day(
    active_case: Case, as_lawyer: Client, lawyer: Professional, fund: LegalAidFund
) -> None:
    first = record(as_lawyer, active_case, "hours", HOURS)
    fund.hourly_rate = D("250")
    fund.save()
    record(as_lawyer, active_case, "hours", {"day": "2024-05-20", "hours": "2", "note": ""})

    assert messages_of(first) == [en("The hours are recorded.")]
    assert list(WorkLog.objects.filter(case=active_case).values_list("lawyer", "fund", "date", "hours", "cost")) == [
        (lawyer.pk, fund.pk, date(2024, 5, 13), D("1.50"), D("300.00")),
        (lawyer.pk, fund.pk, date(2024, 5, 20), D("2.00"), D("500.00")),
    ]
    assert services.fund_totals() == {"hours": D("3.50"), "cost": D("800.00")}


def test_it_sums_the_funds_costs_over_every_case(
    active_case: Case, lawyer: Professional, fund: LegalAidFund, open_case: Callable[..., Case]
) -> None:
    assert services.fund_totals() == {"hours": D(0), "cost": D(0)}
    second = open_case(employer_name="另一家工厂")
    core.case_accept(case=second, professional=lawyer)

    services.work_log_add(case=active_case, professional=lawyer, day=date(2024, 5, 6), hours=D("0.25"))
    services.work_log_add(case=second, professional=lawyer, day=date(2024, 5, 7), hours=D("3.75"), note="开庭准备")

    assert services.fund_totals() == {"hours": D("4.00"), "cost": D("800.00")}


def test_it_refuses_hours_when_no_fund_is_set_up(active_case: Case, as_lawyer: Client) -> None:
    response = record(as_lawyer, active_case, "hours", HOURS)

    assert messages_of(response) == [en("No legal-aid fund is set up yet. Please ask a coordinator.")]
    assert not WorkLog.objects.exists()


def test_it_shows_the_hours_to_the_lawyer_and_coordinator_but_not_the_worker(
    active_case: Case, as_lawyer: Client, fund: LegalAidFund, alice: User, coordinator: User,
    login: Callable[..., Client],
) -> None:
    record(as_lawyer, active_case, "hours", HOURS)
    url = reverse("case_detail", args=[active_case.reference])
    heading = en("Lawyer's hours (paid by the legal-aid fund)")

    assert heading in body(as_lawyer.get(url))
    assert "300.00" in body(login(coordinator, "en").get(url))
    assert heading not in body(login(alice, "en").get(url))


# --- outsiders ---------------------------------------------------------------------------------


def _legal_urls(case: Case) -> list[tuple[str, str]]:
    document = case.documents.first()
    assert document is not None
    return [
        ("get", reverse("case_detail", args=[case.reference])),
        ("get", reverse("document_download", args=[case.reference, document.pk])),
        ("post", reverse("summary_request", args=[case.reference])),
        ("post", reverse("case_action", args=[case.reference, "resolve"])),
        *[("post", reverse("legal:record", args=[case.reference, what])) for what in [*RECORDS, "payment"]],
    ]


@pytest.mark.parametrize("who", ["bob", "doctor", "other_lawyer"])
def test_it_answers_404_to_outsiders_on_every_page_of_the_dispute(
    active_case: Case, as_lawyer: Client, fund: LegalAidFund, login: Callable[..., Client],
    request: pytest.FixtureRequest, who: str,
) -> None:
    record(as_lawyer, active_case, "outcome", SETTLED)
    client = login(user_of(request, who), "en")
    events = CaseEvent.objects.count()

    for method, url in _legal_urls(active_case):
        data = {**CONTACT, **SESSION, **SETTLED, **HOURS, **PAYMENT} if method == "post" else {}
        assert getattr(client, method)(url, data).status_code == 404, url

    assert CaseEvent.objects.count() == events
    assert not EmployerContact.objects.exists()
    assert MediationOutcome.objects.get().amount_received == D("0")
    assert not WorkLog.objects.exists()


def test_it_sends_an_anonymous_visitor_to_log_in_on_every_page_of_the_dispute(
    active_case: Case, login: Callable[..., Client]
) -> None:
    client = login(None)

    for method, url in _legal_urls(active_case):
        response = getattr(client, method)(url, {})
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url

    assert_nothing_recorded(active_case)

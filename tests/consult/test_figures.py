"""Every public and reported figure, checked against a book of cases worked out by hand.

The book is written row by row with explicit times, so each expected number below is arithmetic
on this page. Times are local (Asia/Shanghai) and counted in months back from the current one,
so the book means the same whatever day the tests run.

    case skill        resident assignee      status     submitted (back, day, time)  1st resp.  resolved
    M1   respiratory  alice    doctor        closed     1, +3  10:00                 2h         10h
    M2   respiratory  bob      doctor        closed     1, +8  09:00                 4h12m      20h
    M3   respiratory  alice    other_doctor  active     1, +12 14:00                 9h         -
    M4   cardiology   carol    other_doctor  closed     3, +5  11:00                 1h         30h
    M5   cardiology   bob      other_doctor  active     11, +0 00:30 (UTC: the month before) 5h  -
    M6   respiratory  carol    doctor        resolved   12, +15 10:00 (outside the 12 months) 6h 12h
    M7   respiratory  alice    -             waiting    5, +9  16:00                 -          -
    L1   sick-pay     bob      lawyer        closed     2, +2  00:30 (UTC: the day before) 3h 48h
    L2   sick-pay     carol    lawyer        resolved   2, +19 18:00                 7h         72h
    L3   sick-pay     alice    lawyer        closed     1, +4  08:00                 11h        24h
    W1   respiratory  dave     doctor        withdrawn  1, +6  10:00                 100h       -
    W2   sick-pay     dave     lawyer        withdrawn  2, +10 10:00                 50h        -

    Handovers: M2 declined, L2 reassigned, L3 timed out (M1 has an "accepted" event: not a handover).
    Ratings: M1 5, M2 3, M4 skipped, L1 4, L3 5, W1 5.
    Home visits: M1 done, M3 done + scheduled, M4 cancelled, W1 done.
    Outcomes: L1 settled (agreed 10 000, received 6 000.50), L2 partly (3 000 / 3 000),
              L3 not settled (received 0), W2 settled (99 999 / 88 888).
    Lawyer hours: L1 2.5h 500, L2 1.5h 300, L3 1h 200, W2 4h 800.

The withdrawn cases W1 and W2 carry something for every figure, so leaving them in would show.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from consult import figures
from consult import services as core
from consult.figures import Filters
from consult.models import Case, CaseEvent, Kind, Professional, Rating, Skill, Status, User, Verb
from consult.tally import tally_rebuild
from legal.models import LegalAidFund, MediationOutcome, Result, WorkLog
from medical.models import HomeVisit, VisitStatus
from tests.conftest import PASSWORD

H = dt.timedelta(hours=1)
UNION = "市总工会"
HOSPITAL = "市第一人民医院"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def month_first(back: int) -> dt.date:
    """The first day of the month `back` months before the current local one."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def local(back: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """`day` days into the month `back` months ago, at local wall-clock time."""
    date = month_first(back) + dt.timedelta(days=day)
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


@dataclass
class Book:
    cases: dict[str, Case]
    cardiology: Skill
    carol: User
    dave: User


@pytest.fixture
def cardiology(skill_factory: Callable[..., Skill]) -> Skill:
    return skill_factory(code="cardiology", name_zh="心内科", name_en="Cardiology")


@pytest.fixture
def book(
    alice: User, bob: User, respiratory: Skill, cardiology: Skill, sick_pay: Skill,
    doctor: Professional, other_doctor: Professional, lawyer: Professional,
) -> Book:
    carol = core.resident_signup(phone="13800000003", name="赵春梅", password=PASSWORD)
    dave = core.resident_signup(phone="13800000004", name="孙建国", password=PASSWORD)
    cases: dict[str, Case] = {}

    def add(
        name: str, skill: Skill, resident: User, assignee: Professional | None, status: str,
        submitted: dt.datetime, first_response: dt.timedelta | None, resolved: dt.timedelta | None,
    ) -> None:
        cases[name] = Case.objects.create(
            kind=skill.kind, skill=skill, resident=resident, assignee=assignee, status=status,
            description=f"{name} 的情况", created_at=submitted, submitted_at=submitted,
            first_response_at=submitted + first_response if first_response is not None else None,
            resolved_at=submitted + resolved if resolved is not None else None,
        )

    add("M1", respiratory, alice, doctor, Status.CLOSED, local(1, 3, 10), 2 * H, 10 * H)
    add("M2", respiratory, bob, doctor, Status.CLOSED, local(1, 8, 9), 4 * H + 12 * H / 60, 20 * H)
    add("M3", respiratory, alice, other_doctor, Status.ACTIVE, local(1, 12, 14), 9 * H, None)
    add("M4", cardiology, carol, other_doctor, Status.CLOSED, local(3, 5, 11), 1 * H, 30 * H)
    add("M5", cardiology, bob, other_doctor, Status.ACTIVE, local(11, 0, 0, 30), 5 * H, None)
    add("M6", respiratory, carol, doctor, Status.RESOLVED, local(12, 15, 10), 6 * H, 12 * H)
    add("M7", respiratory, alice, None, Status.WAITING, local(5, 9, 16), None, None)
    add("L1", sick_pay, bob, lawyer, Status.CLOSED, local(2, 2, 0, 30), 3 * H, 48 * H)
    add("L2", sick_pay, carol, lawyer, Status.RESOLVED, local(2, 19, 18), 7 * H, 72 * H)
    add("L3", sick_pay, alice, lawyer, Status.CLOSED, local(1, 4, 8), 11 * H, 24 * H)
    add("W1", respiratory, dave, doctor, Status.WITHDRAWN, local(1, 6, 10), 100 * H, None)
    add("W2", sick_pay, dave, lawyer, Status.WITHDRAWN, local(2, 10, 10), 50 * H, None)
    c = cases

    CaseEvent.objects.bulk_create([
        CaseEvent(case=c["M1"], verb=Verb.ACCEPTED, actor=doctor.user),
        CaseEvent(case=c["M2"], verb=Verb.DECLINED, actor=other_doctor.user),
        CaseEvent(case=c["L2"], verb=Verb.REASSIGNED),
        CaseEvent(case=c["L3"], verb=Verb.TIMED_OUT),
    ])
    Rating.objects.bulk_create([
        Rating(case=c["M1"], score=5), Rating(case=c["M2"], score=3), Rating(case=c["M4"], score=None),
        Rating(case=c["L1"], score=4), Rating(case=c["L3"], score=5), Rating(case=c["W1"], score=5),
    ])
    HomeVisit.objects.bulk_create([
        HomeVisit(case=c[name], requested_by=c[name].resident, address="青山村3组", preferred_dates="周末",
                  status=status)
        for name, status in [
            ("M1", VisitStatus.DONE), ("M3", VisitStatus.DONE), ("M3", VisitStatus.SCHEDULED),
            ("M4", VisitStatus.CANCELLED), ("W1", VisitStatus.DONE),
        ]
    ])
    MediationOutcome.objects.bulk_create([
        MediationOutcome(case=c["L1"], result=Result.SETTLED, amount_agreed=Decimal("10000.00"),
                         amount_received=Decimal("6000.50")),
        MediationOutcome(case=c["L2"], result=Result.PARTLY, amount_agreed=Decimal("3000.00"),
                         amount_received=Decimal("3000.00")),
        MediationOutcome(case=c["L3"], result=Result.NOT_SETTLED, amount_received=Decimal("0")),
        MediationOutcome(case=c["W2"], result=Result.SETTLED, amount_agreed=Decimal("99999.00"),
                         amount_received=Decimal("88888.00")),
    ])
    fund = LegalAidFund.objects.create(name="市总工会法律援助基金", hourly_rate=Decimal("200.00"))
    WorkLog.objects.bulk_create([
        WorkLog(case=c[name], lawyer=lawyer, fund=fund, date=month_first(1), hours=Decimal(hours),
                cost=Decimal(cost))
        for name, hours, cost in [("L1", "2.5", "500"), ("L2", "1.5", "300"), ("L3", "1", "200"), ("W2", "4", "800")]
    ])
    # Written around the services, which keep the figures' tally: counted afresh.
    tally_rebuild()
    return Book(cases=cases, cardiology=cardiology, carol=carol, dave=dave)


def without_withdrawn(book: Book) -> None:
    """Remove the withdrawn cases and everything hanging from them."""
    withdrawn = [book.cases["W1"], book.cases["W2"]]
    WorkLog.objects.filter(case__in=withdrawn).delete()
    Case.objects.filter(pk__in=[case.pk for case in withdrawn]).delete()
    tally_rebuild()


# --- totals ----------------------------------------------------------------------------------


def test_it_counts_consultations_disputes_and_distinct_people_without_withdrawn_cases(book: Book) -> None:
    result = figures.compute()

    assert result.consultations == 7  # M1-M7
    assert result.disputes == 3  # L1-L3
    # alice, bob, carol; dave only withdrew.
    assert result.people_served == 3


def test_it_counts_disputes_settled_and_sums_the_compensation_secured_and_agreed(book: Book) -> None:
    domain = figures.compute().domain

    assert domain["disputes_settled"] == 2  # L1 settled, L2 partly; L3 not settled; W2 withdrawn
    assert domain["compensation_secured"] == Decimal("9000.50")  # 6000.50 + 3000 + 0
    assert domain["compensation_agreed"] == Decimal("13000.00")  # 10000 + 3000


def test_it_counts_home_visits_made_and_the_legal_aid_fund_cost(book: Book) -> None:
    domain = figures.compute().domain

    assert domain["home_visits_made"] == 2  # M1, M3 done; scheduled, cancelled and W1 not counted
    assert domain["fund_hours"] == Decimal("5.00")  # 2.5 + 1.5 + 1
    assert domain["fund_cost"] == Decimal("1000.00")  # 500 + 300 + 200


# --- rates -----------------------------------------------------------------------------------


def test_it_counts_a_resolved_case_as_first_contact_only_when_it_never_changed_hands(book: Book) -> None:
    result = figures.compute()

    assert result.resolved == 7  # M1, M2, M4, M6, L1, L2, L3
    assert result.resolved_first_contact == 4  # less M2 (declined), L2 (reassigned), L3 (timed out)
    assert result.first_contact_rate == Decimal("57.1")  # 4 / 7


def test_it_rates_satisfaction_over_scored_ratings_leaving_skipped_ones_out(book: Book) -> None:
    result = figures.compute()

    # 5, 3, 4, 5 scored (M4 skipped, W1 withdrawn); 4 or 5: three of them.
    assert (result.rated, result.satisfied) == (4, 3)
    assert result.satisfaction_rate == Decimal("75.0")


# --- medians ---------------------------------------------------------------------------------


def test_it_takes_the_middle_value_as_the_median_of_an_odd_count(book: Book) -> None:
    result = figures.compute()

    # First responses: 1, 2, 3, 4h12, [5], 6, 7, 9, 11 (M7 not answered yet).
    assert result.median_first_response == 5 * H
    # Resolutions: 10, 12, 20, [24], 30, 48, 72.
    assert result.median_resolution == 24 * H


def test_it_takes_the_mean_of_the_two_middle_values_as_the_median_of_an_even_count(book: Book) -> None:
    result = figures.compute()
    services = {row["skill"].code: row for row in result.services}
    months = {row["month"]: row for row in result.months}

    # Respiratory: 2, [4h12, 6], 9 -> 5h06 (the mean of all four would be 5h18).
    assert services["respiratory"]["median_first_response"] == 5 * H + 6 * H / 60
    # Cardiology: [1, 5] -> 3.
    assert services["cardiology"]["median_first_response"] == 3 * H
    # Last month: M1 2, M2 4h12, M3 9, L3 11 -> (4h12 + 9) / 2 = 6h36.
    assert months[month_first(1)]["median_first_response"] == 6 * H + 36 * H / 60


# --- per month -------------------------------------------------------------------------------


def test_it_shows_the_last_twelve_months_oldest_first_with_empty_months_as_zero_and_no_median(book: Book) -> None:
    months = figures.compute().months

    assert [row["month"] for row in months] == [month_first(back) for back in range(11, -1, -1)]
    expected = {
        11: (1, 0, 5 * H),  # M5
        5: (1, 0, None),  # M7, not answered yet
        3: (1, 0, 1 * H),  # M4
        2: (0, 2, 5 * H),  # L1, L2: (3 + 7) / 2
        1: (3, 1, 6 * H + 36 * H / 60),  # M1, M2, M3 and L3
    }
    for back, row in zip(range(11, -1, -1), months, strict=True):
        assert (row["consultations"], row["disputes"], row["median_first_response"]) == expected.get(
            back, (0, 0, None)
        ), row["month"]
    # M6 is 12 months back: counted in the totals, in no month.
    assert sum(row["consultations"] for row in months) == 6


def test_it_files_a_case_under_the_local_month_it_was_submitted_in(book: Book) -> None:
    # M5 came at 00:30 on the 1st, Beijing time: still the last day of the month before in UTC.
    submitted = book.cases["M5"].submitted_at
    assert submitted is not None and submitted.astimezone(dt.UTC).month != month_first(11).month

    first_month = figures.compute().months[0]

    assert first_month["month"] == month_first(11)
    assert (first_month["consultations"], first_month["median_first_response"]) == (1, 5 * H)


# --- per service -----------------------------------------------------------------------------


def test_it_breaks_the_figures_down_per_service(book: Book) -> None:
    rows = [
        (row["skill"].code, row["total"], row["resolved"], row["median_first_response"], row["satisfaction_rate"])
        for row in figures.compute().services
    ]

    assert rows == [
        ("cardiology", 2, 1, 3 * H, None),  # M4, M5; only a skipped rating
        ("respiratory", 5, 3, 5 * H + 6 * H / 60, Decimal("50.0")),  # M1-M3, M6, M7; rated 5 and 3
        ("sick-pay", 3, 3, 7 * H, Decimal("100.0")),  # L1-L3; rated 4 and 5
    ]


# --- withdrawn and empty ---------------------------------------------------------------------


REPORT_FILTERS: dict[str, Callable[[Book], Filters]] = {
    "none": lambda book: Filters(),
    "last-month": lambda book: Filters(date_from=month_first(1), date_to=month_first(0) - dt.timedelta(days=1)),
    "respiratory": lambda book: Filters(skill=book.cases["W1"].skill),
    "union": lambda book: Filters(organisation=UNION),
    "doctor": lambda book: Filters(professional_id=book.cases["W1"].assignee_id),
}


@pytest.mark.parametrize("name", list(REPORT_FILTERS))
def test_it_leaves_withdrawn_cases_out_of_every_figure(book: Book, name: str) -> None:
    filters = REPORT_FILTERS[name](book)
    with_withdrawn = figures.compute(filters)

    without_withdrawn(book)

    assert with_withdrawn == figures.compute(filters)


def _assert_empty(result: figures.Figures) -> None:
    assert (result.consultations, result.disputes, result.people_served, result.resolved) == (0, 0, 0, 0)
    assert (result.first_contact_rate, result.satisfaction_rate) == (None, None)
    assert (result.median_first_response, result.median_resolution) == (None, None)
    assert result.domain == {
        "home_visits_made": 0, "disputes_settled": 0, "compensation_agreed": 0, "compensation_secured": 0,
        "fund_hours": 0, "fund_cost": 0,
    }
    assert len(result.months) == 12
    assert all((m["consultations"], m["disputes"], m["median_first_response"]) == (0, 0, None) for m in result.months)
    assert result.services == []


def test_it_gives_zeros_and_no_rates_or_medians_for_a_period_without_cases(book: Book) -> None:
    # Month 4 back has no case at all.
    _assert_empty(figures.compute(Filters(date_from=month_first(4), date_to=month_first(3) - dt.timedelta(days=1))))


def test_it_gives_zeros_and_no_rates_or_medians_before_the_first_case(db: Any) -> None:
    _assert_empty(figures.compute())


# --- the public page -------------------------------------------------------------------------


def shown(body: str, label: str) -> str:
    """The number shown above `label` on a figures page."""
    match = re.search(rf'<span class="n">([^<]*)</span><span>{re.escape(label)}</span>', body)
    assert match, f"no figure labelled {label!r}"
    return match.group(1)


def month_rows(body: str) -> dict[str, tuple[str, str, str]]:
    found = re.findall(
        r"<tr><td[^>]*>(\d{4}-\d{2})</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td><td[^>]*>([^<]*)</td></tr>", body
    )
    return {month: (consultations, disputes, wait) for month, consultations, disputes, wait in found}


def test_it_shows_the_figures_to_anyone_on_the_public_page(book: Book, login: Callable[..., Client]) -> None:
    response = login(None, "en").get(reverse("figures"))

    assert response.status_code == 200
    body = response.content.decode()
    assert shown(body, "consultations") == "7"
    assert shown(body, "disputes handled") == "3"
    assert shown(body, "disputes settled") == "2"
    assert shown(body, "yuan paid to workers") == "9,000.50"
    assert shown(body, "people served") == "3"
    assert shown(body, "resolved at first contact") == "57.1%"
    assert shown(body, "satisfied (rated 4 or 5)") == "75.0%"
    assert shown(body, "hours: median wait for a first answer") == "5.0"
    assert shown(body, "hours: median time to resolution") == "24.0"
    months = month_rows(body)
    assert list(months) == [month_first(back).strftime("%Y-%m") for back in range(11, -1, -1)]
    assert months[month_first(1).strftime("%Y-%m")] == ("3", "1", "6.6")
    assert months[month_first(4).strftime("%Y-%m")] == ("0", "0", "—")
    assert months[month_first(5).strftime("%Y-%m")] == ("1", "0", "—")
    assert month_first(12).strftime("%Y-%m") not in body
    # Nothing about who the people are.
    for user in (book.carol, book.dave):
        assert user.name not in body


def test_it_keeps_the_public_figures_for_five_minutes(book: Book, alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    assert figures.public_figures().consultations == 7
    core.case_withdraw(case=book.cases["M3"], resident=alice)

    monkeypatch.setattr(time, "time", lambda: now + 299)
    assert figures.public_figures().consultations == 7

    monkeypatch.setattr(time, "time", lambda: now + 305)
    assert figures.public_figures().consultations == 6


# --- the coordinator report ------------------------------------------------------------------


@pytest.fixture
def as_coordinator(coordinator: User, login: Callable[..., Client]) -> Client:
    client: Client = login(coordinator, "en")
    return client


def report(client: Client, **params: Any) -> figures.Figures:
    response = client.get(reverse("report"), params)
    assert response.status_code == 200
    result: figures.Figures = response.context["figures"]
    return result


def test_it_reports_the_fund_cost_and_home_visits_made_to_a_coordinator(book: Book, as_coordinator: Client) -> None:
    body = as_coordinator.get(reverse("report")).content.decode()

    assert shown(body, "yuan: legal-aid fund cost") == "1,000.00"
    assert Decimal(shown(body, "lawyer hours")) == Decimal("5")
    assert shown(body, "home visits made") == "2"
    assert shown(body, "yuan agreed in settlements") == "13,000.00"
    assert shown(body, "consultations") == "7"


def test_it_filters_the_report_by_a_range_of_local_dates(book: Book, as_coordinator: Client) -> None:
    # From the day L1 came (00:30, so the day before in UTC) to the day L2 came: L1 and L2 (W2 withdrawn).
    l1, l2 = book.cases["L1"], book.cases["L2"]
    day_from = timezone.localtime(l1.submitted_at).date()
    day_to = timezone.localtime(l2.submitted_at).date()

    result = report(as_coordinator, date_from=day_from.isoformat(), date_to=day_to.isoformat())

    assert (result.consultations, result.disputes, result.people_served, result.resolved) == (0, 2, 2, 2)
    assert result.first_contact_rate == Decimal("50.0")  # L2 was reassigned
    assert result.satisfaction_rate == Decimal("100.0")  # L1 rated 4
    assert result.median_first_response == 5 * H  # (3 + 7) / 2
    assert result.median_resolution == 60 * H  # (48 + 72) / 2
    assert result.domain["fund_cost"] == Decimal("800.00")
    assert result.domain["compensation_secured"] == Decimal("9000.50")

    # A day later at the start, and L1 is out; a day earlier at the end, and L2 is.
    assert report(as_coordinator, date_from=(day_from + dt.timedelta(days=1)).isoformat()).disputes == 2  # L2, L3
    assert report(as_coordinator, date_to=(day_to - dt.timedelta(days=1)).isoformat()).disputes == 1  # L1


def test_it_filters_the_report_by_service(book: Book, as_coordinator: Client) -> None:
    result = report(as_coordinator, skill=book.cardiology.pk)

    assert (result.consultations, result.disputes, result.people_served, result.resolved) == (2, 0, 2, 1)
    assert result.first_contact_rate == Decimal("100.0")
    assert result.satisfaction_rate is None  # only M4's skipped rating
    assert (result.median_first_response, result.median_resolution) == (3 * H, 30 * H)
    assert [row["skill"] for row in result.services] == [book.cardiology]


def test_it_filters_the_report_by_organisation(book: Book, as_coordinator: Client) -> None:
    union = report(as_coordinator, organisation=UNION)
    hospital = report(as_coordinator, organisation=HOSPITAL)

    assert (union.consultations, union.disputes) == (0, 3)
    assert (union.domain["fund_cost"], union.domain["home_visits_made"]) == (Decimal("1000.00"), 0)
    assert (hospital.consultations, hospital.disputes) == (6, 0)  # M1-M6: M7 has nobody yet
    assert (hospital.domain["fund_cost"], hospital.domain["home_visits_made"]) == (0, 2)


def test_it_filters_the_report_by_professional(
    book: Book, as_coordinator: Client, doctor: Professional, other_doctor: Professional
) -> None:
    mine = report(as_coordinator, professional=doctor.pk)  # M1, M2, M6
    theirs = report(as_coordinator, professional=other_doctor.pk)  # M3, M4, M5

    assert (mine.consultations, mine.resolved, mine.resolved_first_contact) == (3, 3, 2)
    assert (mine.median_first_response, mine.median_resolution) == (4 * H + 12 * H / 60, 12 * H)
    assert mine.satisfaction_rate == Decimal("50.0")
    assert mine.domain["home_visits_made"] == 1
    assert (theirs.consultations, theirs.resolved, theirs.median_first_response) == (3, 1, 5 * H)
    assert theirs.domain["home_visits_made"] == 1


# --- the CSV export --------------------------------------------------------------------------


def csv_rows(response: Any) -> list[tuple[str, str]]:
    text = response.content.decode("utf-8-sig")
    return [(label, value) for label, value in csv.reader(io.StringIO(text))]


def test_it_exports_the_report_as_csv_with_the_same_figures_and_a_utf8_bom(book: Book, as_coordinator: Client) -> None:
    response = as_coordinator.get(reverse("report_csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(response)
    values = dict(rows)
    assert {label: values[label] for label in list(values)[:11]} == {
        "Consultations": "7",
        "Disputes handled": "3",
        "Disputes settled": "2",
        "Compensation secured (yuan)": "9000.50",
        "People served": "3",
        "Resolved at first contact (%)": "57.1",
        "Satisfied, rating 4-5 (%)": "75.0",
        "Median wait until first response (hours)": "5.0",
        "Median wait until resolution (hours)": "24.0",
        "Home visits made": "2",
        "Legal-aid fund cost (yuan)": "1000.00",
    }
    last_month = month_first(1).strftime("%Y-%m")
    assert values[f"{last_month} · Consultations"] == "3"
    assert values[f"{last_month} · Median wait until first response (hours)"] == "6.6"
    assert values[f"{month_first(4).strftime('%Y-%m')} · Median wait until first response (hours)"] == ""
    assert values["Respiratory medicine · Cases"] == "5"
    assert values["Respiratory medicine · Median wait until first response (hours)"] == "5.1"
    assert values["Cardiology · Satisfied, rating 4-5 (%)"] == ""
    with translation.override("en"):
        assert rows == figures.rows(figures.compute())


def test_it_writes_chinese_labels_and_names_into_the_csv_as_utf8(book: Book, coordinator: User, login: Any) -> None:
    response = login(coordinator, "zh-hans").get(reverse("report_csv"))

    values = dict(csv_rows(response))
    with translation.override("zh-hans"):
        assert values[f"心内科 · {translation.gettext('Cases')}"] == "2"
        assert values[translation.gettext("Consultations")] == "7"


def test_it_applies_the_report_filters_to_the_csv(book: Book, as_coordinator: Client, doctor: Professional) -> None:
    response = as_coordinator.get(reverse("report_csv"), {"professional": str(doctor.pk), "organisation": HOSPITAL})

    values = dict(csv_rows(response))
    assert (values["Consultations"], values["Median wait until resolution (hours)"]) == ("3", "12.0")
    with translation.override("en"):
        assert csv_rows(response) == figures.rows(figures.compute(Filters(professional_id=doctor.pk)))


@pytest.mark.parametrize("page", ["report", "report_csv"])
@pytest.mark.parametrize("who", ["alice", "bob", "doctor", "lawyer"])
def test_it_refuses_the_report_and_its_csv_to_anyone_but_a_coordinator(
    book: Book, page: str, who: str, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person

    response = login(user).get(reverse(page))

    assert response.status_code == 404
    assert b"9000.50" not in response.content


@pytest.mark.parametrize("page", ["report", "report_csv"])
def test_it_sends_an_anonymous_visitor_of_the_report_to_the_login_page(
    book: Book, page: str, login: Callable[..., Client]
) -> None:
    response = login(None).get(reverse(page))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- a constant number of queries ------------------------------------------------------------


def _count_queries(client: Client) -> tuple[int, int, figures.Figures]:
    """Queries of compute() and of the public page (its cache emptied first), and the figures."""
    with CaptureQueriesContext(connection) as computed:
        result = figures.compute()
    cache.clear()
    with CaptureQueriesContext(connection) as page:
        assert client.get(reverse("figures")).status_code == 200
    return len(computed), len(page), result


def _reference(n: int) -> str:
    # Digits 0 and 1 never occur in real references, so these cannot collide with them.
    return f"Q{n:07d}"


@pytest.mark.slow
def test_it_computes_the_figures_with_100000_cases_in_as_many_queries_as_with_10(
    skill_factory: Callable[..., Skill], login: Callable[..., Client]
) -> None:
    client = login(None)
    medical = [skill_factory() for _ in range(4)]
    legal = [skill_factory(kind=Kind.LEGAL) for _ in range(2)]
    residents = [
        core.resident_signup(phone=f"1370000{n:04d}", name=f"居民{n}", password=PASSWORD) for n in range(25)
    ]
    now = timezone.now()
    statuses = [Status.CLOSED, Status.RESOLVED, Status.ACTIVE, Status.WAITING, Status.WITHDRAWN]

    def case(n: int, skills: list[Skill], people: list[User], days: int) -> Case:
        skill, status = skills[n % len(skills)], statuses[n % 5]
        submitted = now - dt.timedelta(days=(n * 7) % (days + 1), minutes=n % 997)
        answered = status in (Status.CLOSED, Status.RESOLVED, Status.ACTIVE)
        resolved = status in (Status.CLOSED, Status.RESOLVED)
        return Case(
            reference=_reference(n), kind=skill.kind, skill_id=skill.pk, resident_id=people[n % len(people)].pk,
            status=status, description="咳嗽", created_at=submitted, submitted_at=submitted,
            first_response_at=submitted + dt.timedelta(minutes=30 + n % 600) if answered else None,
            resolved_at=submitted + dt.timedelta(hours=2 + n % 90) if resolved else None,
        )

    # Ten cases: two services, one person, all of them today.
    ten = Case.objects.bulk_create([case(n, [medical[0], legal[0]], residents[:1], 0) for n in range(10)])
    Rating.objects.create(case=ten[0], score=5)
    CaseEvent.objects.create(case=ten[1], verb=Verb.DECLINED)
    tally_rebuild()
    compute_10, page_10, _ = _count_queries(client)

    # Then 99 990 more: six services, 25 people, spread over 14 months, with ratings and handovers.
    batch = 10_000
    for first in range(10, 100_000, batch):
        made = Case.objects.bulk_create(
            [case(n, medical + legal, residents, 420) for n in range(first, min(first + batch, 100_000))]
        )
        Rating.objects.bulk_create([Rating(case=c, score=1 + c.pk % 5) for c in made[::7] if c.status == Status.CLOSED])
        CaseEvent.objects.bulk_create([CaseEvent(case=c, verb=Verb.DECLINED) for c in made[::11]])
    assert Case.objects.count() == 100_000
    tally_rebuild()
    compute_many, page_many, result = _count_queries(client)

    assert (compute_many, page_many) == (compute_10, page_10)
    # The figures really were worked out over all of them.
    assert result.consultations + result.disputes == 80_000  # every fifth case was withdrawn
    assert len(result.services) == 6
    assert result.rated > 1

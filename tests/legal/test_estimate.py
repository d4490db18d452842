"""The claim estimate, rule by rule, against amounts worked out by hand.

Hangzhou: minimum wage 2490, average wage 10000, 21.75 working days a month, sick pay 60% of the
wage but at least 80% of the minimum wage, overtime 150% / 200% / 300%, unlawful dismissal × 2.
Steps are compared in English, as a coordinator reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from consult.models import Kind, Skill
from legal import estimate
from legal.estimate import Estimate, step_text
from legal.models import CityRates, DisputeFacts, LegalIntake
from legal.services import estimate_for

D = Decimal


def texts(result: Estimate) -> list[str]:
    with translation.override("en"):
        return [step_text(step) for step in result.steps]


# --- sick pay ----------------------------------------------------------------------------------


def test_it_pays_sixty_percent_of_a_wage_above_the_floor_by_working_day(hangzhou: CityRates) -> None:
    # 4000 × 60% = 2400 a month; 2400 ÷ 21.75 = 110.3448 → 110.34 a day; × 20 = 2206.80; 802 paid.
    result = estimate.sick_pay(wage=D("4000"), sick_days=20, received=D("802"), rates=hangzhou)

    assert (result.rule, result.entitled, result.owed) == (DisputeFacts.SICK_PAY, D("2206.80"), D("1404.80"))
    assert texts(result) == [
        "Sick pay is 60% of the wage: 4000 × 60% = 2400.00 yuan a month.",
        "It may not be lower than 80% of the minimum wage: 2490.00 × 80% = 1992.00 yuan a month.",
        "A day is 1/21.75 of a month: 2400.00 ÷ 21.75 = 110.34 yuan.",
        "20 days × 110.34 = 2206.80 yuan.",
        "Received 802 yuan, so still owed: 1404.80 yuan.",
    ]


def test_it_raises_sick_pay_below_the_floor_to_eighty_percent_of_the_minimum_wage(hangzhou: CityRates) -> None:
    # 3000 × 60% = 1800 < 2490 × 80% = 1992; 1992 ÷ 21.75 = 91.586 → 91.59 a day; × 10 = 915.90.
    result = estimate.sick_pay(wage=D("3000"), sick_days=10, received=D("0"), rates=hangzhou)

    assert (result.entitled, result.owed) == (D("915.90"), D("915.90"))
    assert texts(result)[2:] == [
        "A day is 1/21.75 of a month: 1992.00 ÷ 21.75 = 91.59 yuan.",
        "10 days × 91.59 = 915.90 yuan.",
        "Received 0 yuan, so still owed: 915.90 yuan.",
    ]


def test_it_never_pays_more_sick_pay_than_the_wage_itself(hangzhou: CityRates) -> None:
    # The floor (1992) is above this wage (1800): the wage is the cap. 1800 ÷ 21.75 = 82.76; × 5.
    result = estimate.sick_pay(wage=D("1800"), sick_days=5, received=D("0"), rates=hangzhou)

    assert result.entitled == D("413.80")
    assert texts(result)[2:4] == [
        "It is not more than the wage itself: 1800 yuan a month.",
        "A day is 1/21.75 of a month: 1800 ÷ 21.75 = 82.76 yuan.",
    ]


def test_it_keeps_the_floor_when_the_wage_is_exactly_the_floor(hangzhou: CityRates) -> None:
    result = estimate.sick_pay(wage=D("1992.00"), sick_days=1, received=D("0"), rates=hangzhou)

    # 1992 ÷ 21.75 = 91.59; no "not more than the wage" step, the floor equals the wage.
    assert result.entitled == D("91.59")
    assert not any("not more than the wage" in t for t in texts(result))


def test_it_owes_nothing_for_zero_days_of_sick_leave(hangzhou: CityRates) -> None:
    result = estimate.sick_pay(wage=D("4000"), sick_days=0, received=D("0"), rates=hangzhou)

    assert (result.entitled, result.owed) == (D("0.00"), D("0.00"))
    assert texts(result)[-2:] == ["0 days × 110.34 = 0.00 yuan.", "Received 0 yuan, so still owed: 0.00 yuan."]


def test_it_owes_nothing_when_more_was_received_than_the_law_provides(hangzhou: CityRates) -> None:
    result = estimate.sick_pay(wage=D("4000"), sick_days=20, received=D("3000"), rates=hangzhou)

    assert (result.entitled, result.owed) == (D("2206.80"), D("0.00"))
    assert texts(result)[-1] == "Received 3000 yuan, so still owed: 0 yuan."


def test_it_uses_the_citys_own_percentages(hangzhou: CityRates) -> None:
    hangzhou.sick_pay_wage_percent = 70
    hangzhou.monthly_work_days = D("20.83")

    # 4000 × 70% = 2800; 2800 ÷ 20.83 = 134.42; × 3 = 403.26.
    result = estimate.sick_pay(wage=D("4000"), sick_days=3, received=D("0"), rates=hangzhou)

    assert result.entitled == D("403.26")


# --- overtime ----------------------------------------------------------------------------------

# 4000 ÷ 21.75 ÷ 8 = 22.988505... → 22.99 an hour, rounded before it is multiplied.
HOURLY_STEP = "Hourly wage: 4000 ÷ 21.75 days ÷ 8 hours = 22.99 yuan."


@pytest.mark.parametrize(
    ("day_type", "hours", "amount", "line"),
    [
        ("weekday", "10", "344.85", "Working days: 10 h × 22.99 × 150% = 344.85 yuan."),
        ("restday", "8", "367.84", "Rest days: 8 h × 22.99 × 200% = 367.84 yuan."),
        ("holiday", "3", "206.91", "Public holidays: 3 h × 22.99 × 300% = 206.91 yuan."),
        ("weekday", "2.5", "86.21", "Working days: 2.5 h × 22.99 × 150% = 86.21 yuan."),
    ],
)
def test_it_pays_each_kind_of_overtime_day_at_its_own_rate(
    hangzhou: CityRates, day_type: str, hours: str, amount: str, line: str
) -> None:
    figures = {"weekday_hours": D(0), "restday_hours": D(0), "holiday_hours": D(0)}
    figures[f"{day_type}_hours"] = D(hours)

    result = estimate.overtime(wage=D("4000"), received=D("0"), rates=hangzhou, **figures)

    assert (result.rule, result.entitled, result.owed) == (DisputeFacts.OVERTIME, D(amount), D(amount))
    assert texts(result) == [HOURLY_STEP, line, f"Received 0 yuan, so still owed: {amount} yuan."]


def test_it_adds_overtime_of_all_day_types_at_the_rounded_hourly_wage(hangzhou: CityRates) -> None:
    # 344.85 + 367.84 + 206.91 = 919.60 (at the unrounded 22.988505 it would be 919.54).
    result = estimate.overtime(
        wage=D("4000"), weekday_hours=D("10"), restday_hours=D("8"), holiday_hours=D("3"),
        received=D("500"), rates=hangzhou,
    )

    assert (result.entitled, result.owed) == (D("919.60"), D("419.60"))
    assert len(result.steps) == 5


# --- dismissal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "months", "years", "amount"),
    [
        pytest.param(date(2024, 1, 15), date(2024, 7, 15), 6, "1", "6000.00", id="exactly-6-months-is-a-year"),
        pytest.param(date(2024, 1, 15), date(2024, 7, 14), 5, "0.5", "3000.00", id="5-months-30-days-is-half"),
        pytest.param(date(2022, 3, 1), date(2023, 8, 1), 17, "1.5", "9000.00", id="1-year-5-months"),
        pytest.param(date(2022, 3, 1), date(2023, 9, 1), 18, "2", "12000.00", id="1-year-6-months"),
        pytest.param(date(2023, 3, 20), date(2023, 9, 10), 5, "0.5", "3000.00", id="end-day-before-start-day"),
        pytest.param(date(2014, 5, 1), date(2024, 5, 1), 120, "10", "60000.00", id="ten-whole-years"),
    ],
)
def test_it_counts_years_of_service_by_full_months(
    hangzhou: CityRates, start: date, end: date, months: int, years: str, amount: str
) -> None:
    result = estimate.dismissal(wage=D("6000"), start=start, end=end, unlawful=False, received=D("0"), rates=hangzhou)

    assert (result.rule, result.entitled, result.owed) == (DisputeFacts.DISMISSAL, D(amount), D(amount))
    assert texts(result) == [
        f"Worked {months} full months, counted as {years} years.",
        f"Compensation: 6000 × {years} = {amount} yuan.",
        f"Received 0 yuan, so still owed: {amount} yuan.",
    ]


def test_it_pays_half_a_month_for_less_than_a_month_of_work(hangzhou: CityRates) -> None:
    # "不满六个月的，向劳动者支付半个月工资": 20 days of work is less than six months.
    result = estimate.dismissal(
        wage=D("6000"), start=date(2024, 3, 1), end=date(2024, 3, 21), unlawful=False, received=D("0"), rates=hangzhou
    )

    assert result.entitled == D("3000.00")


def test_it_counts_days_beyond_whole_years_as_half_a_year(hangzhou: CityRates) -> None:
    # 2 years and 10 days: the 10 days are "less than six months", half a month's wage more.
    result = estimate.dismissal(
        wage=D("6000"), start=date(2022, 3, 1), end=date(2024, 3, 11), unlawful=False, received=D("0"), rates=hangzhou
    )

    assert result.entitled == D("15000.00")
    assert texts(result)[0] == "Worked 24 full months, counted as 2.5 years."


def test_it_pays_nothing_for_a_contract_that_ended_the_day_it_began(hangzhou: CityRates) -> None:
    day = date(2024, 3, 1)
    result = estimate.dismissal(wage=D("6000"), start=day, end=day, unlawful=False, received=D("0"), rates=hangzhou)

    assert result.entitled == D("0.00")


def test_it_caps_a_high_wage_at_three_times_the_average_and_twelve_years(hangzhou: CityRates) -> None:
    # 19 years on 40000 a month: the base is 3 × 10000 = 30000, for 12 years, doubled when unlawful.
    result = estimate.dismissal(
        wage=D("40000"), start=date(2005, 1, 1), end=date(2024, 1, 1), unlawful=True, received=D("0"), rates=hangzhou
    )

    assert (result.entitled, result.owed) == (D("720000.00"), D("720000.00"))
    assert texts(result) == [
        "Worked 228 full months, counted as 19 years.",
        "The wage is above 3 times the city's average (30000.00 yuan): that cap is used, for at most 12 years.",
        "Compensation: 30000.00 × 12 = 360000.00 yuan.",
        "Unlawful dismissal is paid 2 times: 720000.00 yuan.",
        "Received 0 yuan, so still owed: 720000.00 yuan.",
    ]


def test_it_counts_every_year_for_a_wage_at_the_cap(hangzhou: CityRates) -> None:
    # Exactly 3 × the average is not above it: no cap, and all 19 years count.
    result = estimate.dismissal(
        wage=D("30000.00"), start=date(2005, 1, 1), end=date(2024, 1, 1), unlawful=False, received=D("0"),
        rates=hangzhou,
    )

    assert result.entitled == D("570000.00")
    assert len(result.steps) == 3


def test_it_doubles_compensation_for_an_unlawful_dismissal(hangzhou: CityRates) -> None:
    result = estimate.dismissal(
        wage=D("6000"), start=date(2022, 3, 1), end=date(2023, 8, 1), unlawful=True, received=D("1000"), rates=hangzhou
    )

    assert (result.entitled, result.owed) == (D("18000.00"), D("17000.00"))
    assert texts(result)[2] == "Unlawful dismissal is paid 2 times: 18000.00 yuan."


def test_it_owes_no_compensation_when_more_was_received(hangzhou: CityRates) -> None:
    result = estimate.dismissal(
        wage=D("6000"), start=date(2022, 3, 1), end=date(2023, 8, 1), unlawful=False, received=D("9000.01"),
        rates=hangzhou,
    )

    assert (result.entitled, result.owed) == (D("9000.00"), D("0.00"))


# --- which rule, from the intake -----------------------------------------------------------------


def _intake(**fields: Any) -> LegalIntake:
    values: dict[str, Any] = {
        "job_title": "挡车工", "employment_start": date(2019, 3, 1), "employer_name": "某厂",
        "what_happened": "…", "monthly_wage": D("4000"), "amount_received": D("802"), "desired_outcome": "…",
        "city": "杭州", "sick_days": 20,
    }
    values.update(fields)
    return LegalIntake(**values)


@pytest.fixture
def legal_skill(skill_factory: Callable[..., Skill]) -> Callable[[str], Skill]:
    return lambda code: skill_factory(kind=Kind.LEGAL, code=code)


def test_it_estimates_by_the_rule_of_the_practice_area(
    hangzhou: CityRates, legal_skill: Callable[[str], Skill]
) -> None:
    sick = estimate_for(_intake(), legal_skill("sick-pay"))
    overtime = estimate_for(_intake(overtime_restday_hours=D("8"), amount_received=D("0")), legal_skill("overtime"))
    dismissal = estimate_for(
        _intake(employment_start=date(2022, 3, 1), employment_end=date(2023, 9, 1), amount_received=D("0")),
        legal_skill("dismissal"),
    )

    assert sick is not None and (sick.rule, sick.owed) == (DisputeFacts.SICK_PAY, D("1404.80"))
    assert overtime is not None and (overtime.rule, overtime.owed) == (DisputeFacts.OVERTIME, D("367.84"))
    assert dismissal is not None and (dismissal.rule, dismissal.owed) == (DisputeFacts.DISMISSAL, D("8000.00"))


def test_it_uses_the_rates_in_force_today_not_future_ones(
    hangzhou: CityRates, legal_skill: Callable[[str], Skill]
) -> None:
    CityRates.objects.create(
        city="杭州", effective_from=date(2999, 1, 1), minimum_wage=D("9000"), average_wage=D("90000")
    )

    result = estimate_for(_intake(), legal_skill("sick-pay"))

    assert result is not None and result.owed == D("1404.80")


def test_it_has_no_estimate_for_a_city_without_rates(
    hangzhou: CityRates, legal_skill: Callable[[str], Skill]
) -> None:
    assert estimate_for(_intake(city="温州"), legal_skill("sick-pay")) is None


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        pytest.param("sick-pay", {"sick_days": None}, id="sick-pay-without-days"),
        pytest.param("sick-pay", {"sick_days": 0}, id="sick-pay-with-zero-days"),
        pytest.param("overtime", {}, id="overtime-without-hours"),
        pytest.param("overtime", {"overtime_weekday_hours": D("0")}, id="overtime-with-zero-hours"),
    ],
)
def test_it_has_no_estimate_without_the_figure_the_rule_needs(
    hangzhou: CityRates, legal_skill: Callable[[str], Skill], code: str, fields: dict[str, Any]
) -> None:
    assert estimate_for(_intake(**fields), legal_skill(code)) is None


def test_it_has_no_estimate_for_a_practice_area_without_a_rule(
    hangzhou: CityRates, legal_skill: Callable[[str], Skill]
) -> None:
    assert estimate_for(_intake(), legal_skill("work-injury")) is None

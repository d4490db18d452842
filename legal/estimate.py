"""What the law provides for sick pay, overtime and dismissal, from the worker's figures and the
city's rates. An estimate for the lawyer to confirm: every step is kept so it can be shown.

Steps are stored untranslated (msgid + figures) and translated when shown, so a worker who reads
Chinese and a coordinator who reads English see the same reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils.translation import gettext, gettext_noop

from legal.models import CityRates, DisputeFacts

CENT = Decimal("0.01")
HOURS_PER_DAY = Decimal(8)
MAX_SERVICE_YEARS_WHEN_CAPPED = Decimal(12)
HIGH_WAGE_MULTIPLE = 3

# Which practice areas have an estimate, by the service's code.
RULE_FOR_SKILL = {
    "sick-pay": DisputeFacts.SICK_PAY,
    "overtime": DisputeFacts.OVERTIME,
    "dismissal": DisputeFacts.DISMISSAL,
}


def yuan(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Estimate:
    rule: str
    entitled: Decimal
    owed: Decimal
    steps: list[dict[str, Any]] = field(default_factory=list)


def _step(msgid: str, **params: Any) -> dict[str, Any]:
    return {"label": msgid, "params": {k: str(v) for k, v in params.items()}}


def step_text(step: dict[str, Any]) -> str:
    return gettext(step["label"]) % step["params"]


def _owed(entitled: Decimal, received: Decimal, steps: list[dict[str, Any]], rule: str) -> Estimate:
    entitled = yuan(entitled)
    owed = max(entitled - received, Decimal(0))
    steps.append(
        _step(gettext_noop("Received %(received)s yuan, so still owed: %(owed)s yuan."), received=received, owed=owed)
    )
    return Estimate(rule=rule, entitled=entitled, owed=yuan(owed), steps=steps)


def sick_pay(*, wage: Decimal, sick_days: int, received: Decimal, rates: CityRates) -> Estimate:
    by_wage = yuan(wage * rates.sick_pay_wage_percent / 100)
    floor = yuan(rates.minimum_wage * rates.sick_pay_floor_percent / 100)
    steps = [
        _step(
            gettext_noop("Sick pay is %(percent)s%% of the wage: %(wage)s × %(percent)s%% = %(amount)s yuan a month."),
            percent=rates.sick_pay_wage_percent,
            wage=wage,
            amount=by_wage,
        ),
        _step(
            gettext_noop(
                "It may not be lower than %(percent)s%% of the minimum wage: %(minimum)s × %(percent)s%% = "
                "%(floor)s yuan a month."
            ),
            percent=rates.sick_pay_floor_percent,
            minimum=rates.minimum_wage,
            floor=floor,
        ),
    ]
    monthly = max(by_wage, floor)
    if monthly > wage:
        # The floor never asks for more than the worker earns when well.
        monthly = wage
        steps.append(_step(gettext_noop("It is not more than the wage itself: %(wage)s yuan a month."), wage=wage))
    daily = yuan(monthly / rates.monthly_work_days)
    steps += [
        _step(
            gettext_noop("A day is 1/%(days)s of a month: %(monthly)s ÷ %(days)s = %(daily)s yuan."),
            days=rates.monthly_work_days,
            monthly=monthly,
            daily=daily,
        ),
        _step(
            gettext_noop("%(sick)s days × %(daily)s = %(total)s yuan."),
            sick=sick_days,
            daily=daily,
            total=yuan(daily * sick_days),
        ),
    ]
    return _owed(daily * sick_days, received, steps, DisputeFacts.SICK_PAY)


def overtime(
    *,
    wage: Decimal,
    weekday_hours: Decimal,
    restday_hours: Decimal,
    holiday_hours: Decimal,
    received: Decimal,
    rates: CityRates,
) -> Estimate:
    hourly = yuan(wage / rates.monthly_work_days / HOURS_PER_DAY)
    steps = [
        _step(
            gettext_noop("Hourly wage: %(wage)s ÷ %(days)s days ÷ 8 hours = %(hourly)s yuan."),
            wage=wage,
            days=rates.monthly_work_days,
            hourly=hourly,
        )
    ]
    total = Decimal(0)
    for hours, percent, msgid in (
        (
            weekday_hours,
            rates.overtime_weekday_percent,
            gettext_noop("Working days: %(hours)s h × %(hourly)s × %(percent)s%% = %(amount)s yuan."),
        ),
        (
            restday_hours,
            rates.overtime_restday_percent,
            gettext_noop("Rest days: %(hours)s h × %(hourly)s × %(percent)s%% = %(amount)s yuan."),
        ),
        (
            holiday_hours,
            rates.overtime_holiday_percent,
            gettext_noop("Public holidays: %(hours)s h × %(hourly)s × %(percent)s%% = %(amount)s yuan."),
        ),
    ):
        if hours:
            amount = yuan(hours * hourly * percent / 100)
            total += amount
            steps.append(_step(msgid, hours=hours, hourly=hourly, percent=percent, amount=amount))
    return _owed(total, received, steps, DisputeFacts.OVERTIME)


def full_months(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(months, 0)


def service_years(start: date, end: date) -> Decimal:
    """Years counted for compensation: each full year is one; a remainder of six months or more
    counts as a year, less than six (even a few days) as half a year."""
    months = full_months(start, end)
    years, rest = divmod(months, 12)
    if rest >= 6:
        return Decimal(years + 1)
    # Days beyond the last full month are part of the remainder too (不满六个月, 支付半个月工资).
    if rest > 0 or (end > start and end.day != start.day):
        return Decimal(years) + Decimal("0.5")
    return Decimal(years)


def dismissal(
    *, wage: Decimal, start: date, end: date, unlawful: bool, received: Decimal, rates: CityRates
) -> Estimate:
    months = full_months(start, end)
    years = service_years(start, end)
    steps = [
        _step(gettext_noop("Worked %(months)s full months, counted as %(years)s years."), months=months, years=years)
    ]
    base = wage
    cap = rates.average_wage * HIGH_WAGE_MULTIPLE
    if wage > cap:
        base = cap
        steps.append(
            _step(
                gettext_noop(
                    "The wage is above 3 times the city's average (%(cap)s yuan): "
                    "that cap is used, for at most 12 years."
                ),
                cap=cap,
            )
        )
        years = min(years, MAX_SERVICE_YEARS_WHEN_CAPPED)
    compensation = yuan(base * years)
    steps.append(
        _step(
            gettext_noop("Compensation: %(base)s × %(years)s = %(amount)s yuan."),
            base=base,
            years=years,
            amount=compensation,
        )
    )
    if unlawful:
        compensation = yuan(compensation * rates.unlawful_dismissal_multiplier)
        steps.append(
            _step(
                gettext_noop("Unlawful dismissal is paid %(times)s times: %(amount)s yuan."),
                times=rates.unlawful_dismissal_multiplier,
                amount=compensation,
            )
        )
    return _owed(compensation, received, steps, DisputeFacts.DISMISSAL)

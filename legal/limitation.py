"""The time limit to apply for labour arbitration, worked out from what the worker told us.

Labour Dispute Mediation and Arbitration Law, art. 27: the limitation period is one year, counted
from the day the party knew or should have known that their rights were infringed (para. 1). For
unpaid labour remuneration while the employment lasts, the period does not run; once the
employment ends, the application must be made within one year of its end (para. 4).

From the intake: a claim for pay (sick pay, overtime) runs from the end of the job, and not at all
while the worker is still employed; a dismissal is known on the day the job ended, so it runs from
then too. A dispute of another kind says no date we can count from: the lawyer types the deadline
with the outcome. Mediation interrupts the period and it starts again (para. 2): the date shown is
the latest to be safe without it, and the lawyer's own date, once typed, replaces it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from legal.models import DisputeFacts, LegalIntake

# Practice areas whose claim is labour remuneration (art. 27 para. 4).
PAY_RULES = frozenset({DisputeFacts.SICK_PAY, DisputeFacts.OVERTIME})


@dataclass(frozen=True)
class Limitation:
    deadline: date | None  # None: not running yet (unpaid pay while still employed)
    basis: Promise


def one_year_after(day: date) -> date:
    """The same day a year later; 29 February gives the last day of February (a period counted
    in years ends on the corresponding day, or on the month's last day where there is none)."""
    year = day.year + 1
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def ends_with_deadline(deadline: date) -> list[date]:
    """Every day whose one year after is `deadline` (two when it is 28 February after a leap year)."""
    year = deadline.year - 1
    base = deadline.replace(year=year, day=min(deadline.day, calendar.monthrange(year, deadline.month)[1]))
    return [day for d in (-1, 0, 1) if one_year_after(day := base + timedelta(days=d)) == deadline]


def arbitration_limitation(intake: LegalIntake, rule: str | None) -> Limitation | None:
    """The limit for this dispute (`rule`: its practice area's estimate rule), or None when the
    intake says nothing to count from."""
    if rule in PAY_RULES:
        if intake.employment_end is None:
            return Limitation(
                None,
                _(
                    "While you still work there, the one-year limit for unpaid pay does not run; it starts "
                    "on the day the job ends (Labour Dispute Mediation and Arbitration Law, art. 27)."
                ),
            )
        return Limitation(
            one_year_after(intake.employment_end),
            _("One year from the end of the job (Labour Dispute Mediation and Arbitration Law, art. 27)."),
        )
    if rule == DisputeFacts.DISMISSAL and intake.employment_end is not None:
        return Limitation(
            one_year_after(intake.employment_end),
            _(
                "One year from the dismissal, when you knew your rights were infringed "
                "(Labour Dispute Mediation and Arbitration Law, art. 27)."
            ),
        )
    return None

"""The figures the public sees and coordinators report on.

Every number comes from aggregate queries: the count of queries is the same for a hundred cases
or a hundred thousand. Medians use window functions (row number and count per group), which both
PostgreSQL and SQLite run, one query per family of medians.

Withdrawn cases are left out of every figure: they were never handled.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import CharField, Count, Exists, F, FloatField, Func, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from consult.domains import DOMAINS
from consult.models import Case, CaseEvent, Kind, Rating, Skill, Status, Verb

PUBLIC_CACHE_SECONDS = 300
MONTHS_SHOWN = 12
# A case that changed hands was not resolved at first contact.
HANDOVER_VERBS = (Verb.DECLINED, Verb.REASSIGNED, Verb.TIMED_OUT)


class SecondsBetween(Func):
    """Whole seconds from `start` to `end`, in the database's own arithmetic (Django's generic
    duration on SQLite calls back into Python for every row)."""

    output_field = FloatField()

    def __init__(self, start: str, end: str) -> None:
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra
        )


class MonthOf(Func):
    """The local month of a timestamp as "YYYY-MM". SQLite shifts by the zone's current offset
    (Asia/Shanghai has no daylight saving); PostgreSQL converts properly."""

    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        offset = timezone.localtime().utcoffset() or dt.timedelta()
        minutes = int(offset.total_seconds() // 60)
        return self.as_sql(
            compiler, connection, template=f"strftime('%%%%Y-%%%%m', %(expressions)s, '{minutes:+d} minutes')", **extra
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        zone = timezone.get_current_timezone_name()
        return self.as_sql(
            compiler, connection, template=f"to_char(%(expressions)s AT TIME ZONE '{zone}', 'YYYY-MM')", **extra
        )


@dataclass
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    skill: Skill | None = None
    organisation: str = ""
    professional_id: int | None = None


@dataclass
class Figures:
    consultations: int = 0
    disputes: int = 0
    people_served: int = 0
    resolved: int = 0
    resolved_first_contact: int = 0
    rated: int = 0
    satisfied: int = 0
    median_first_response: dt.timedelta | None = None
    median_resolution: dt.timedelta | None = None
    domain: dict[str, Any] = field(default_factory=dict)
    months: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_contact_rate(self) -> Decimal | None:
        return _share(self.resolved_first_contact, self.resolved)

    @property
    def satisfaction_rate(self) -> Decimal | None:
        return _share(self.satisfied, self.rated)


def _share(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1"))


def counted_cases(filters: Filters | None = None) -> QuerySet[Case]:
    cases = Case.objects.exclude(status=Status.WITHDRAWN)
    if filters is None:
        return cases
    if filters.date_from:
        cases = cases.filter(submitted_at__date__gte=filters.date_from)
    if filters.date_to:
        cases = cases.filter(submitted_at__date__lte=filters.date_to)
    if filters.skill:
        cases = cases.filter(skill=filters.skill)
    if filters.organisation:
        cases = cases.filter(assignee__organisation=filters.organisation)
    if filters.professional_id:
        cases = cases.filter(assignee_id=filters.professional_id)
    return cases


def medians(cases: QuerySet[Case], start: str, end: str, group: Any = None) -> dict[Any, dt.timedelta]:
    """Median of `end - start` per group (or overall, under the key None), in one query: number
    the durations within each group, keep the middle one or two rows, average those."""
    group_expr = group if group is not None else Value(0)
    ranked = (
        cases.filter(**{f"{end}__isnull": False, f"{start}__isnull": False})
        .annotate(duration=SecondsBetween(start, end), grp=group_expr)
        .annotate(
            rn=Window(RowNumber(), partition_by=[F("grp")], order_by=[F("duration").asc(), F("pk").asc()]),
            n=Window(Count("pk"), partition_by=[F("grp")]),
        )
        .filter(Q(rn=(F("n") + 1) / 2) | Q(rn=(F("n") + 2) / 2))
        .values_list("grp", "duration")
    )
    middle: dict[Any, list[float]] = {}
    for key, seconds in ranked:
        middle.setdefault(None if group is None else key, []).append(float(seconds))
    # Rounded to the millisecond: SQLite's day fractions carry float noise below that.
    return {key: dt.timedelta(milliseconds=round(sum(values) * 1000 / len(values))) for key, values in middle.items()}


def _month_start(months_back: int) -> dt.datetime:
    today = timezone.localdate()
    year, month = today.year, today.month - months_back
    while month <= 0:
        month += 12
        year -= 1
    return dt.datetime(year, month, 1, tzinfo=timezone.get_current_timezone())


def compute(filters: Filters | None = None) -> Figures:
    cases = counted_cases(filters)
    figures = Figures()
    totals = cases.aggregate(
        consultations=Count("pk", filter=Q(kind=Kind.MEDICAL)),
        disputes=Count("pk", filter=Q(kind=Kind.LEGAL)),
        people=Count("resident", distinct=True),
        resolved=Count("pk", filter=Q(resolved_at__isnull=False)),
    )
    figures.consultations = totals["consultations"]
    figures.disputes = totals["disputes"]
    figures.people_served = totals["people"]
    figures.resolved = totals["resolved"]
    handed_over = CaseEvent.objects.filter(case=OuterRef("pk"), verb__in=HANDOVER_VERBS)
    figures.resolved_first_contact = cases.filter(resolved_at__isnull=False).exclude(Exists(handed_over)).count()
    ratings = Rating.objects.filter(case__in=cases, score__isnull=False).aggregate(
        rated=Count("pk"), satisfied=Count("pk", filter=Q(score__gte=4))
    )
    figures.rated, figures.satisfied = ratings["rated"], ratings["satisfied"]
    figures.median_first_response = medians(cases, "submitted_at", "first_response_at").get(None)
    figures.median_resolution = medians(cases, "submitted_at", "resolved_at").get(None)
    for domain in DOMAINS.values():
        figures.domain.update(domain.figures(cases))

    # Per month, the last twelve, oldest first; months with nothing still show (as zero).
    since = _month_start(MONTHS_SHOWN - 1)
    recent = cases.filter(submitted_at__gte=since)
    month = MonthOf("submitted_at")
    per_month = {
        row["month"]: row
        for row in recent.annotate(month=month)
        .values("month")
        .annotate(
            consultations=Count("pk", filter=Q(kind=Kind.MEDICAL)), disputes=Count("pk", filter=Q(kind=Kind.LEGAL))
        )
    }
    month_medians = medians(recent, "submitted_at", "first_response_at", month)
    for back in range(MONTHS_SHOWN - 1, -1, -1):
        start = _month_start(back).date()
        key = start.strftime("%Y-%m")
        row = per_month.get(key, {})
        figures.months.append(
            {
                "month": start,
                "consultations": row.get("consultations", 0),
                "disputes": row.get("disputes", 0),
                "median_first_response": month_medians.get(key),
            }
        )

    # Per service.
    by_skill = {
        row["skill"]: row
        for row in cases.values("skill").annotate(
            total=Count("pk"), resolved=Count("pk", filter=Q(resolved_at__isnull=False))
        )
    }
    skill_medians = medians(cases, "submitted_at", "first_response_at", F("skill_id"))
    skill_ratings = {
        row["case__skill"]: row
        for row in Rating.objects.filter(case__in=cases, score__isnull=False)
        .values("case__skill")
        .annotate(rated=Count("pk"), satisfied=Count("pk", filter=Q(score__gte=4)))
    }
    skills = Skill.objects.filter(pk__in=list(by_skill)) if by_skill else Skill.objects.none()
    for skill in skills:
        rated = skill_ratings.get(skill.pk, {})
        figures.services.append(
            {
                "skill": skill,
                "total": by_skill[skill.pk]["total"],
                "resolved": by_skill[skill.pk]["resolved"],
                "median_first_response": skill_medians.get(skill.pk),
                "satisfaction_rate": _share(rated.get("satisfied", 0), rated.get("rated", 0)),
            }
        )
    figures.services.sort(key=lambda row: (row["skill"].kind != Kind.MEDICAL, row["skill"].position, row["skill"].code))
    return figures


def public_figures() -> Figures:
    """The public page's figures, cached briefly: everyone sees the same numbers for a while.
    The age is kept with the figures, so the window is the same whatever cache holds them."""
    cached: tuple[float, Figures] | None = cache.get("figures:public")
    now = time.time()
    if cached is None or now - cached[0] >= PUBLIC_CACHE_SECONDS:
        cached = (now, compute())
        cache.set("figures:public", cached, PUBLIC_CACHE_SECONDS)
    return cached[1]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds() / 3600:.1f}"
    return str(value)


def _yuan(value: Any) -> str:
    # SQLite hands sums of decimals back unscaled (9000.5, 1000): money always has 2 places.
    return "" if value is None else f"{Decimal(value):.2f}"


def rows(figures: Figures) -> list[tuple[str, str]]:
    """The figures as label/value rows (hours for times, percent for rates), for CSV export."""
    from django.utils.translation import gettext as _

    out: list[tuple[str, str]] = [
        (_("Consultations"), _fmt(figures.consultations)),
        (_("Disputes handled"), _fmt(figures.disputes)),
        (_("Disputes settled"), _fmt(figures.domain.get("disputes_settled"))),
        (_("Compensation secured (yuan)"), _yuan(figures.domain.get("compensation_secured"))),
        (_("People served"), _fmt(figures.people_served)),
        (_("Resolved at first contact (%)"), _fmt(figures.first_contact_rate)),
        (_("Satisfied, rating 4-5 (%)"), _fmt(figures.satisfaction_rate)),
        (_("Median wait until first response (hours)"), _fmt(figures.median_first_response)),
        (_("Median wait until resolution (hours)"), _fmt(figures.median_resolution)),
        (_("Home visits made"), _fmt(figures.domain.get("home_visits_made"))),
        (_("Legal-aid fund cost (yuan)"), _yuan(figures.domain.get("fund_cost"))),
    ]
    for month in figures.months:
        label = month["month"].strftime("%Y-%m")
        out.append((f"{label} · {_('Consultations')}", _fmt(month["consultations"])))
        out.append((f"{label} · {_('Disputes handled')}", _fmt(month["disputes"])))
        out.append((f"{label} · {_('Median wait until first response (hours)')}", _fmt(month["median_first_response"])))
    for service in figures.services:
        name = str(service["skill"].name)
        out.append((f"{name} · {_('Cases')}", _fmt(service["total"])))
        out.append(
            (f"{name} · {_('Median wait until first response (hours)')}", _fmt(service["median_first_response"]))
        )
        out.append((f"{name} · {_('Satisfied, rating 4-5 (%)')}", _fmt(service["satisfaction_rate"])))
    return out

"""The figures the public sees and coordinators report on.

Every number comes from aggregate queries: the count of queries is the same for a hundred cases
or a hundred thousand. Counts come from one pass over the cases; medians are read at the middle of
the indexed waits each case stores (see `medians`), all of them in one statement.

Withdrawn cases are left out of every figure: they were never handled.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from consult.domains import DOMAINS
from consult.models import HANDOVER_VERBS, Case, CaseEvent, Kind, Skill, Status

PUBLIC_CACHE_SECONDS = 300
MONTHS_SHOWN = 12


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


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_current_timezone())


def counted_cases(filters: Filters | None = None) -> QuerySet[Case]:
    cases = Case.objects.exclude(status=Status.WITHDRAWN)
    if filters is None:
        return cases
    # Local dates as ranges of the stored instants, which an index can serve (a `__date` lookup
    # converts every row's timestamp first).
    if filters.date_from:
        cases = cases.filter(submitted_at__gte=_local_midnight(filters.date_from))
    if filters.date_to:
        cases = cases.filter(submitted_at__lt=_local_midnight(filters.date_to + dt.timedelta(days=1)))
    if filters.skill:
        cases = cases.filter(skill=filters.skill)
    if filters.organisation:
        cases = cases.filter(assignee__organisation=filters.organisation)
    if filters.professional_id:
        cases = cases.filter(assignee_id=filters.professional_id)
    return cases


def medians(parts: list[tuple[Any, QuerySet[Case], str, int]]) -> dict[Any, dt.timedelta]:
    """Medians of several sets at once: for each (key, cases, column, how many have the column),
    the middle one or two values, read in the column's order at that offset, all in one statement.

    The counts come from the caller's aggregate query. The columns are the stored waits of a case,
    indexed for the counted cases, so the database walks an index to the middle instead of
    computing and sorting every case's wait."""
    sql: list[str] = []
    params: list[Any] = []
    keys: list[Any] = []
    quote = connection.ops.quote_name
    for key, cases, column, count in parts:
        if not count:
            continue
        offset, size = (count - 1) // 2, 2 - count % 2
        middle = (
            cases.filter(**{f"{column}__isnull": False})
            .order_by(column)
            .annotate(value=F(column))
            .values_list("value")[offset : offset + size]
        )
        part_sql, part_params = middle.query.sql_with_params()
        alias = quote(f"part{len(keys)}")
        # Only Django's own compiled SQL and quoted names are pasted; values travel as parameters.
        sql.append(f"SELECT {len(keys)} AS {quote('part')}, {alias}.{quote('value')} FROM ({part_sql}) {alias}")  # noqa: S608
        params.extend(part_params)
        keys.append(key)
    if not sql:
        return {}
    values: dict[Any, list[float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(sql), params)
        for index, seconds in cursor.fetchall():
            values.setdefault(keys[index], []).append(float(seconds))
    # Rounded to the millisecond: SQLite's day fractions carry float noise below that.
    return {key: dt.timedelta(milliseconds=round(sum(v) * 1000 / len(v))) for key, v in values.items()}


def _month_start(months_back: int) -> dt.datetime:
    """Local midnight on the first of the month `months_back` before the current one (-1: the
    next month)."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 - months_back
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.get_current_timezone())


def compute(filters: Filters | None = None) -> Figures:
    """All the figures in a fixed number of statements: one pass over the counted cases for every
    count (per service and kind, per month, with ratings and handovers), one for the people, one
    for every median, and the domains' own."""
    cases = counted_cases(filters)
    figures = Figures()
    # The last twelve months, oldest first, as ranges of local time.
    months = [(_month_start(back), _month_start(back - 1)) for back in range(MONTHS_SHOWN - 1, -1, -1)]
    responded = Q(first_response_seconds__isnull=False)
    counts: dict[str, Any] = {
        "total": Count("pk"),
        "resolved": Count("pk", filter=Q(resolved_at__isnull=False)),
        # Resolved by someone after a handover: not at first contact.
        "handed_over": Count(
            "pk",
            filter=Q(resolved_at__isnull=False)
            & Q(pk__in=CaseEvent.objects.filter(verb__in=HANDOVER_VERBS).values("case_id")),
        ),
        "responded": Count("pk", filter=responded),
        "resolution_timed": Count("pk", filter=Q(resolution_seconds__isnull=False)),
        "rated": Count("rating", filter=Q(rating__score__isnull=False)),
        "satisfied": Count("rating", filter=Q(rating__score__gte=4)),
    }
    for n, (start, end) in enumerate(months):
        in_month = Q(submitted_at__gte=start, submitted_at__lt=end)
        counts[f"month{n}"] = Count("pk", filter=in_month)
        counts[f"month{n}_responded"] = Count("pk", filter=in_month & responded)
    groups = list(cases.order_by().values("skill", "kind").annotate(**counts))

    def total(name: str, kind: str | None = None) -> int:
        return sum(row[name] for row in groups if kind is None or row["kind"] == kind)

    figures.consultations = total("total", Kind.MEDICAL)
    figures.disputes = total("total", Kind.LEGAL)
    figures.resolved = total("resolved")
    figures.resolved_first_contact = figures.resolved - total("handed_over")
    figures.rated, figures.satisfied = total("rated"), total("satisfied")
    figures.people_served = cases.order_by().values("resident").distinct().count()

    parts: list[tuple[Any, QuerySet[Case], str, int]] = [
        ("first_response", cases, "first_response_seconds", total("responded")),
        ("resolution", cases, "resolution_seconds", total("resolution_timed")),
    ]
    parts += [
        (("month", n), cases.filter(submitted_at__gte=start, submitted_at__lt=end), "first_response_seconds",
         total(f"month{n}_responded"))
        for n, (start, end) in enumerate(months)
    ]
    skill_counts: dict[int, int] = {}
    for row in groups:
        skill_counts[row["skill"]] = skill_counts.get(row["skill"], 0) + row["responded"]
    parts += [
        (("skill", skill), cases.filter(skill_id=skill), "first_response_seconds", count)
        for skill, count in skill_counts.items()
    ]
    middle = medians(parts)
    figures.median_first_response = middle.get("first_response")
    figures.median_resolution = middle.get("resolution")
    for domain in DOMAINS.values():
        figures.domain.update(domain.figures(cases))

    # Per month, oldest first; months with nothing still show (as zero).
    for n, (start, _end) in enumerate(months):
        figures.months.append(
            {
                "month": start.date(),
                "consultations": total(f"month{n}", Kind.MEDICAL),
                "disputes": total(f"month{n}", Kind.LEGAL),
                "median_first_response": middle.get(("month", n)),
            }
        )

    # Per service.
    by_skill: dict[int, dict[str, int]] = {}
    for row in groups:
        into = by_skill.setdefault(row["skill"], {"total": 0, "resolved": 0, "rated": 0, "satisfied": 0})
        for name in into:
            into[name] += row[name]
    skills = Skill.objects.filter(pk__in=list(by_skill)) if by_skill else Skill.objects.none()
    for skill in skills:
        row = by_skill[skill.pk]
        figures.services.append(
            {
                "skill": skill,
                "total": row["total"],
                "resolved": row["resolved"],
                "median_first_response": middle.get(("skill", skill.pk)),
                "satisfaction_rate": _share(row["satisfied"], row["rated"]),
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

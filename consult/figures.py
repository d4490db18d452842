"""The figures the public sees and coordinators report on.

Every number comes from aggregate queries: the count of queries is the same for a hundred cases
or a hundred thousand. The counts per service and month are added up from the tally the services
keep per service and local day (consult/tally.py), a few rows per day whatever the number of cases;
a report filtered by organisation or professional, which the tally does not keep, counts them in
one pass over the cases. Medians are read at the middle of the indexed waits each case stores (see
`medians`), all of them in one statement, with the counts telling where the middle is.

Withdrawn cases are left out of every figure: they were never handled.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Model, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from consult.domains import DOMAINS
from consult.models import Case, CaseEvent, CaseTally, Kind, Skill, Status
from consult.tally import COUNTS, tally_counts

M = TypeVar("M", bound=Model)

PUBLIC_CACHE_SECONDS = 300
MONTHS_SHOWN = 12


@dataclass
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    skill: Skill | None = None
    organisation: str = ""
    professional_id: int | None = None
    # The kinds of case counted (a coordinator's domains, User.coordinated_kinds); None: every kind
    # (the public figures).
    kinds: frozenset[str] | None = None


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
    if filters.kinds is not None:
        cases = cases.filter(kind__in=sorted(filters.kinds))
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


def union(parts: list[tuple[Any, QuerySet[Any]]]) -> list[tuple[Any, tuple[Any, ...]]]:
    """Run several `values_list` querysets as one statement (UNION ALL, each part in its own
    subquery so it keeps its order and slice); each row comes back with its part's key."""
    if not parts:
        return []
    quote = connection.ops.quote_name
    sql: list[str] = []
    params: list[Any] = []
    for n, (_key, queryset) in enumerate(parts):
        part_sql, part_params = queryset.query.sql_with_params()
        # Only Django's own compiled SQL and quoted names are pasted; values travel as parameters.
        sql.append(f"SELECT {n} AS {quote('part')}, {quote(f'part{n}')}.* FROM ({part_sql}) {quote(f'part{n}')}")  # noqa: S608
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(sql), params)
        return [(parts[row[0]][0], tuple(row[1:])) for row in cursor.fetchall()]


def medians(parts: list[tuple[Any, QuerySet[Case], str, int]]) -> dict[Any, dt.timedelta]:
    """Medians of several sets at once: for each (key, cases, column, how many have the column),
    the middle one or two values, read in the column's order at that offset, all in one statement.

    The counts come from the caller's aggregate query. The columns are the stored waits of a case,
    indexed for the counted cases, so the database walks an index to the middle instead of
    computing and sorting every case's wait."""
    middles: list[tuple[Any, QuerySet[Any]]] = []
    for key, cases, column, count in parts:
        if count:
            offset, size = (count - 1) // 2, 2 - count % 2
            middles.append((
                key,
                cases.filter(**{f"{column}__isnull": False})
                .order_by(column)
                .annotate(value=F(column))
                .values_list("value")[offset : offset + size],
            ))
    values: dict[Any, list[float]] = {}
    for key, (seconds,) in union(middles):
        values.setdefault(key, []).append(float(seconds))
    # Rounded to the millisecond: SQLite's day fractions carry float noise below that.
    return {key: dt.timedelta(milliseconds=round(sum(v) * 1000 / len(v))) for key, v in values.items()}


def _month_start(months_back: int) -> dt.datetime:
    """Local midnight on the first of the month `months_back` before the current one (-1: the
    next month)."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 - months_back
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.get_current_timezone())


def rows_on(rows: QuerySet[M], cases: QuerySet[Case]) -> QuerySet[M]:
    """`rows` (of a model with a `case` key) limited to those on `cases`, for the domains' figures.
    Every counted case (the public figures, the report unfiltered) is said as "not on a withdrawn
    case": the database then holds the few withdrawn cases in a hash, not every counted one."""
    if str(cases.query) == str(counted_cases().query):
        return rows.exclude(case__in=Case.objects.filter(status=Status.WITHDRAWN).values("pk"))
    return rows.filter(case__in=cases)


def _rescanned(
    cases: QuerySet[Case], months: list[tuple[dt.datetime, dt.datetime]]
) -> tuple[list[dict[str, Any]], dict[tuple[int, str], tuple[int, int]]]:
    """The counts per service and kind, and per month and kind, from the cases themselves: one pass
    over them, and one range of the submission index per month (one statement)."""
    groups = list(cases.order_by().values("skill", "kind").annotate(**tally_counts(CaseEvent.objects.all())))
    by_month: dict[tuple[int, str], tuple[int, int]] = {
        (n, kind): (count, answered)
        for n, (kind, count, answered) in union([
            (
                n,
                cases.filter(submitted_at__gte=start, submitted_at__lt=end)
                .order_by()
                .values("kind")
                # Counted from what the index holds (the wait counts where it is known), not the rows.
                .annotate(n=Count("*"), responded=Count("first_response_seconds"))
                .values_list("kind", "n", "responded"),
            )
            for n, (start, end) in enumerate(months)
        ])
    }
    return groups, by_month


def _tallied(
    filters: Filters | None, months: list[tuple[dt.datetime, dt.datetime]]
) -> tuple[list[dict[str, Any]], dict[tuple[int, str], tuple[int, int]]]:
    """The same counts added up from the tally (consult/tally.py), per service, kind and month in
    one statement: a few hundred rows whatever the number of cases."""
    tallies = CaseTally.objects.all()
    if filters and filters.kinds is not None:
        tallies = tallies.filter(kind__in=sorted(filters.kinds))
    if filters and filters.date_from:
        tallies = tallies.filter(day__gte=filters.date_from)
    if filters and filters.date_to:
        tallies = tallies.filter(day__lte=filters.date_to)
    if filters and filters.skill:
        tallies = tallies.filter(skill=filters.skill)
    rows = tallies.order_by().values("skill", "kind", month=TruncMonth("day")).annotate(
        **{name: Sum(name) for name in COUNTS}
    )
    shown = {start.date(): n for n, (start, _end) in enumerate(months)}
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    by_month: dict[tuple[int, str], tuple[int, int]] = {}
    for row in rows:
        group = groups.setdefault((row["skill"], row["kind"]), {"skill": row["skill"], "kind": row["kind"]})
        for name in COUNTS:
            group[name] = group.get(name, 0) + row[name]
        n = shown.get(row["month"])
        if n is not None and row["total"]:
            count, answered = by_month.get((n, row["kind"]), (0, 0))
            by_month[(n, row["kind"])] = (count + row["total"], answered + row["responded"])
    return [group for group in groups.values() if group["total"]], by_month


def compute(filters: Filters | None = None, *, rescan: bool = False) -> Figures:
    """All the figures in a fixed number of statements: the counts per service and per month
    (from the tally, or by rescanning the cases when `rescan` or when filtered by organisation or
    professional, which the tally does not keep), one for the people, one for every median, and
    the domains' own."""
    cases = counted_cases(filters)
    figures = Figures()
    # The last twelve months, oldest first, as ranges of local time.
    months = [(_month_start(back), _month_start(back - 1)) for back in range(MONTHS_SHOWN - 1, -1, -1)]
    if rescan or (filters and (filters.organisation or filters.professional_id)):
        groups, by_month = _rescanned(cases, months)
    else:
        groups, by_month = _tallied(filters, months)

    def total(name: str, kind: str | None = None, skill: int | None = None) -> int:
        return sum(
            row[name]
            for row in groups
            if (kind is None or row["kind"] == kind) and (skill is None or row["skill"] == skill)
        )

    def in_month(n: int, kind: str | None = None, answered: bool = False) -> int:
        return sum(
            responded if answered else count
            for (month, k), (count, responded) in by_month.items()
            if month == n and kind in (None, k)
        )

    figures.consultations = total("total", Kind.MEDICAL)
    figures.disputes = total("total", Kind.LEGAL)
    figures.resolved = total("resolved")
    figures.resolved_first_contact = figures.resolved - total("handed_over")
    figures.rated, figures.satisfied = total("rated"), total("satisfied")
    figures.people_served = cases.order_by().values("resident").distinct().count()

    skills = sorted({row["skill"] for row in groups})
    response = "first_response_seconds"
    middle = medians(
        [
            ("first_response", cases, response, total("responded")),
            ("resolution", cases, "resolution_seconds", total("resolution_timed")),
            *(
                (("month", n), cases.filter(submitted_at__gte=start, submitted_at__lt=end), response,
                 in_month(n, answered=True))
                for n, (start, end) in enumerate(months)
            ),
            *((("skill", skill), cases.filter(skill_id=skill), response, total("responded", skill=skill))
              for skill in skills),
        ]
    )
    figures.median_first_response = middle.get("first_response")
    figures.median_resolution = middle.get("resolution")
    for domain in DOMAINS.values():
        figures.domain.update(domain.figures(cases))

    # Per month, oldest first; months with nothing still show (as zero).
    for n, (start, _end) in enumerate(months):
        figures.months.append(
            {
                "month": start.date(),
                "consultations": in_month(n, Kind.MEDICAL),
                "disputes": in_month(n, Kind.LEGAL),
                "median_first_response": middle.get(("month", n)),
            }
        )

    # Per service.
    for skill in Skill.objects.filter(pk__in=skills) if skills else Skill.objects.none():
        figures.services.append(
            {
                "skill": skill,
                "total": total("total", skill=skill.pk),
                "resolved": total("resolved", skill=skill.pk),
                "median_first_response": middle.get(("skill", skill.pk)),
                "satisfaction_rate": _share(total("satisfied", skill=skill.pk), total("rated", skill=skill.pk)),
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

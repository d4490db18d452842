"""The figures' counts per service and local day of submission (`CaseTally`), kept by the services.

A bucket is recounted from its own cases (a few dozen, found by the submission index) rather than
adjusted by differences: a lost or doubled adjustment would stay wrong for good, a recount cannot.
`tally_refresh` runs in the transaction that changes what a case counts for: its submission, its
resolution, its withdrawal, its rating. A first response, the one change a claim makes, is the
exception: one more in its bucket (`tally_responded`, and inside the claim statement on PostgreSQL),
so that a claim stays one statement. Increments and recounts compose: each takes the bucket's row
lock, an increment applies to the row as it is once the lock is free, and a recount is read after
the lock is taken. `tally_rebuild` recounts every bucket, for rows written around the services (the
data migration, a benchmark's bulk seeding).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Model, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from consult.models import HANDOVER_VERBS, Case, CaseEvent, CaseTally

COUNTS = ("total", "resolved", "handed_over", "responded", "resolution_timed", "rated", "satisfied")


def tally_counts(events: QuerySet[Any]) -> dict[str, Count]:
    """The figures' counts over a set of cases, as aggregates (`events`: every case event, where
    the handovers are read from). The figures use them too when they rescan."""
    return {
        "total": Count("pk"),
        "resolved": Count("pk", filter=Q(resolved_at__isnull=False)),
        "handed_over": Count(
            "pk",
            filter=Q(resolved_at__isnull=False)
            & Q(pk__in=events.filter(verb__in=[str(verb) for verb in HANDOVER_VERBS]).values("case_id")),
        ),
        "responded": Count("pk", filter=Q(first_response_seconds__isnull=False)),
        "resolution_timed": Count("pk", filter=Q(resolution_seconds__isnull=False)),
        "rated": Count("rating", filter=Q(rating__score__isnull=False)),
        "satisfied": Count("rating", filter=Q(rating__score__gte=4)),
    }


def _buckets(cases: QuerySet[Any], events: QuerySet[Any]) -> QuerySet[Any]:
    # The local day in the site's time zone, the one the figures' months and date filters use.
    return (
        cases.filter(submitted_at__isnull=False)
        .exclude(status="withdrawn")
        .order_by()
        .annotate(day=TruncDate("submitted_at", tzinfo=timezone.get_default_timezone()))
        .values("skill", "kind", "day")
        .annotate(**tally_counts(events))
    )


def tally_rebuild(
    *, cases: type[Model] = Case, events: type[Model] = CaseEvent, tally: type[Model] = CaseTally
) -> int:
    """Recount every bucket from the cases; the number of buckets. The models are parameters for
    the data migration's historical ones."""
    with transaction.atomic():  # the table lock lasts until commit, and readers never see it empty
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Services that already rewrote a bucket commit first; the others wait and recount
                # theirs after this (ROW EXCLUSIVE, which their writes take, conflicts with EXCLUSIVE).
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(tally._meta.db_table)} IN EXCLUSIVE MODE")
        rows = list(_buckets(cases._default_manager.all(), events._default_manager.all()))
        tally._default_manager.all().delete()
        tally._default_manager.bulk_create(
            [tally(skill_id=row.pop("skill"), **row) for row in rows], batch_size=2_000
        )
    return len(rows)


def _bucket(case: Case) -> dict[str, Any]:
    day = timezone.localtime(case.submitted_at, timezone.get_default_timezone()).date()
    return {"skill_id": case.skill_id, "kind": case.kind, "day": day}


def tally_responded(case: Case) -> None:
    """Count the first response just stamped on `case`. Call inside the transaction that stamped it."""
    if case.submitted_at is None:
        return
    if not CaseTally.objects.filter(**_bucket(case)).update(responded=F("responded") + 1):
        tally_refresh(case)  # no bucket yet (its cases were written around the services)


def tally_refresh(case: Case) -> None:
    """Recount the bucket of `case`. Call inside the transaction that changed the case, after the
    change."""
    if case.submitted_at is None:
        # Never submitted (every case a service opens is): in no bucket, and in no figure's months.
        return
    zone = timezone.get_default_timezone()
    key = _bucket(case)
    start = dt.datetime.combine(key["day"], dt.time(), tzinfo=zone)
    end = dt.datetime.combine(key["day"] + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    # The bucket's row lock first (the row made if new), and only then the count: a statement reads
    # as of its start on PostgreSQL, so a count taken before a concurrent writer of the same bucket
    # committed would write over its change. The value this upsert writes is replaced below.
    CaseTally.objects.bulk_create(
        [CaseTally(**key)], update_conflicts=True, unique_fields=["skill", "kind", "day"], update_fields=["total"]
    )
    day_cases = Case.objects.filter(
        skill_id=case.skill_id, kind=case.kind, submitted_at__gte=start, submitted_at__lt=end
    )
    row = next(iter(_buckets(day_cases, CaseEvent.objects.all())), None)
    CaseTally.objects.filter(**key).update(**{name: row[name] if row else 0 for name in COUNTS})

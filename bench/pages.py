"""Staff pages as the platform grows: each page at 1,000 and at 100,000 cases, through Django's test
client with DEBUG off, against a trivial page (the home page) measured in the same run.

Run alone on its own PostgreSQL database (created if missing, kept between runs so a second run
skips the seeding):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/consult_pages .venv/bin/python -m bench.pages

`make bench` calls `pages()` at the end, on the database the other benchmarks used.
BENCH_PAGES_CASES changes the size (default 100,000).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = int(os.environ.get("BENCH_PAGES_CASES", "100000"))
SMALL = 1_000
ROUNDS = int(os.environ.get("BENCH_PAGES_ROUNDS", "9"))
MESSAGES = 1_000
PREFIX = "P"  # references P0000001...: 0 and 1 never occur in real ones, so no collision


def _ensure_database(url: str) -> None:
    """Create the PostgreSQL database of DATABASE_URL if it is missing."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname="postgres", autocommit=True,
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup_standalone() -> None:
    # whitenoise warns that collectstatic never ran: the pages serve no static file here.
    warnings.filterwarnings("ignore", message="No directory at")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consult_pages")
    # Production's settings: DEBUG off (no query log, cached templates), a secret key, our host.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SINGLE_MACHINE", "true")  # no Redis nor S3 here: the pages of one box
    os.environ.setdefault("SECRET_KEY", "bench-pages-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")
    _ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()


def _p50(fn: Callable[[], Any], rounds: int = ROUNDS) -> float:
    fn()  # warm: connection, templates, translations
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class Cast:
    """Who and what the pages are looked at with."""

    def __init__(self) -> None:
        from django.contrib.auth.hashers import make_password

        from consult.models import Kind, Professional, Role, Skill, User

        password = make_password("bench-password-123")
        self.skills = list(Skill.objects.filter(code__startswith="pages-"))
        if not self.skills:
            for n in range(12):
                kind = Kind.MEDICAL if n < 8 else Kind.LEGAL
                self.skills.append(Skill.objects.create(
                    kind=kind, code=f"pages-{n}", name_zh=f"服务{n}", name_en=f"Service {n}", office_zh="办",
                    office_en="Office", office_phone="0", response_hours=24, position=n,
                ))
        if not User.objects.filter(phone="13600007777").exists():
            User.objects.create(phone="13600007777", name="协调员", role=Role.COORDINATOR, is_staff=True,
                                password=password)
            User.objects.bulk_create(
                User(phone=f"1350{n:07d}", name=f"居民{n}", role=Role.RESIDENT, password=password)
                for n in range(5_000)
            )
            rng = random.Random(7)
            for n in range(40):
                kind = Kind.MEDICAL if n < 30 else Kind.LEGAL
                role = Role.DOCTOR if kind == Kind.MEDICAL else Role.LAWYER
                user = User.objects.create(phone=f"1340{n:07d}", name=f"专家{n:02d}", role=role, password=password)
                pro = Professional.objects.create(
                    user=user, kind=kind, organisation=f"机构{n % 4}", city="杭州", capacity=1_000, on_duty=n % 2 == 0,
                )
                pro.skills.set(rng.sample([s for s in self.skills if s.kind == kind], 2))
        self.coordinator = User.objects.get(phone="13600007777")
        self.residents = list(User.objects.filter(phone__startswith="1350").values_list("pk", flat=True))
        professionals = Professional.objects.filter(user__phone__startswith="1340")
        self.professionals: dict[str, list[int]] = {
            kind: list(professionals.filter(kind=kind).values_list("pk", flat=True))
            for kind in (Kind.MEDICAL, Kind.LEGAL)
        }


def _grow(cast: Cast, target: int) -> None:
    """Add cases (with their events, ratings and domain records) until `target` exist: most closed
    over the last fourteen months, a few hundred open ones of the last days."""
    from consult.models import Case, CaseEvent, Kind, Rating, Status, Verb
    from legal.models import LegalAidFund, MediationOutcome, Result, WorkLog
    from medical.models import HomeVisit, VisitStatus

    fund = LegalAidFund.objects.get_or_create(name="基金", defaults={"hourly_rate": Decimal("200.00")})[0]
    have = Case.objects.filter(reference__startswith=PREFIX).count()
    added = have < target
    now = dt.datetime.now(dt.UTC)
    batch = 5_000
    while have < target:
        rng = random.Random(have)
        cases = []
        for n in range(have, min(have + batch, target)):
            skill = cast.skills[n % len(cast.skills)]
            roll = rng.random()
            status = (
                Status.WAITING if roll < 0.01 else Status.ASSIGNED if roll < 0.015 else Status.ACTIVE if roll < 0.03
                else Status.RESOLVED if roll < 0.06 else Status.WITHDRAWN if roll < 0.10 else Status.CLOSED
            )
            open_ = status in (Status.WAITING, Status.ASSIGNED, Status.ACTIVE)
            submitted = now - dt.timedelta(minutes=rng.randrange(3 * 24 * 60 if open_ else 420 * 24 * 60))
            responded = submitted + dt.timedelta(minutes=rng.randrange(5, 3_000))
            resolved = responded + dt.timedelta(minutes=rng.randrange(5, 10_000))
            handled = status not in (Status.WAITING, Status.WITHDRAWN)
            cases.append(Case(
                reference=f"{PREFIX}{n:07d}", kind=skill.kind, skill_id=skill.pk,
                resident_id=cast.residents[rng.randrange(len(cast.residents))],
                assignee_id=rng.choice(cast.professionals[skill.kind]) if handled else None,
                status=status, priority=rng.choice((0, 0, 0, 1, 2)), description="咳嗽两周",
                created_at=submitted, submitted_at=submitted,
                waiting_at=submitted if status == Status.WAITING else None,
                assigned_at=submitted if handled else None,
                accepted_at=responded if status not in (Status.WAITING, Status.ASSIGNED, Status.WITHDRAWN) else None,
                first_response_at=responded if status not in (Status.WAITING, Status.ASSIGNED, Status.WITHDRAWN)
                else None,
                resolved_at=resolved if status in (Status.RESOLVED, Status.CLOSED) else None,
                closed_at=resolved if status == Status.CLOSED else None,
                withdrawn_at=responded if status == Status.WITHDRAWN else None,
            ))
        made = Case.objects.bulk_create(cases)
        events = []
        for case in made:
            events.append(CaseEvent(case=case, verb=Verb.SUBMITTED, created_at=case.submitted_at or now))
            if case.accepted_at:
                verb = Verb.DECLINED if case.pk % 9 == 0 else Verb.ACCEPTED
                events.append(CaseEvent(case=case, verb=verb, created_at=case.accepted_at))
        CaseEvent.objects.bulk_create(events)
        closed = [c for c in made if c.status == Status.CLOSED]
        Rating.objects.bulk_create(Rating(case=c, score=None if c.pk % 5 == 0 else 1 + c.pk % 5) for c in closed[::3])
        medical = [c for c in closed if c.kind == Kind.MEDICAL]
        legal = [c for c in closed if c.kind == Kind.LEGAL]
        HomeVisit.objects.bulk_create(
            HomeVisit(case=c, requested_by_id=c.resident_id, address="村", preferred_dates="周末",
                      status=VisitStatus.DONE)
            for c in medical[::20]
        )
        MediationOutcome.objects.bulk_create(
            MediationOutcome(case=c, result=Result.SETTLED if c.pk % 3 else Result.NOT_SETTLED,
                             amount_agreed=Decimal("5000.00"), amount_received=Decimal("2500.00"))
            for c in legal[::2]
        )
        WorkLog.objects.bulk_create(
            WorkLog(case=c, lawyer_id=c.assignee_id or 0, fund=fund, date=(c.submitted_at or now).date(),
                    hours=Decimal("1.5"), cost=Decimal("300.00"))
            for c in legal
        )
        have += len(made)
    from django.db import connection

    from consult.tally import tally_rebuild

    if added:
        # Written around the services, which keep the figures' tally: counted afresh.
        tally_rebuild()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # As autovacuum leaves a table that has settled: statistics, and the visibility map that
            # lets index-only scans skip the rows.
            cursor.execute("VACUUM ANALYZE")


def _chatty_case(cast: Cast) -> Any:
    """An active case with MESSAGES messages, for the case page."""
    from consult.models import Case, Kind, Message, Professional, Status

    case = Case.objects.filter(reference="ZCHAT000").first()
    if case is None:
        skill = next(s for s in cast.skills if s.kind == Kind.MEDICAL)
        now = dt.datetime.now(dt.UTC)
        case = Case.objects.create(
            reference="ZCHAT000", kind=skill.kind, skill=skill, resident_id=cast.residents[0],
            assignee_id=cast.professionals[Kind.MEDICAL][0], status=Status.ACTIVE, description="咳嗽",
            submitted_at=now, assigned_at=now, accepted_at=now, first_response_at=now, last_seq=MESSAGES,
        )
        pro_user = Professional.objects.get(pk=cast.professionals[Kind.MEDICAL][0]).user_id
        Message.objects.bulk_create(
            Message(case=case, seq=n, sender_id=case.resident_id if n % 2 else pro_user,
                    body=f"第{n}条消息：今天咳嗽好些了吗？还有没有发烧？", created_at=now)
            for n in range(1, MESSAGES + 1)
        )
        from consult.tally import tally_rebuild

        tally_rebuild()
    return case


def _measure(cast: Cast) -> dict[str, tuple[float, int, int]]:
    """p50 seconds, statements and response bytes of each page."""
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from consult.models import Case, Status, User

    coordinator = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    coordinator.force_login(cast.coordinator)
    chatty = _chatty_case(cast)
    resident = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    resident.force_login(User.objects.get(pk=chatty.resident_id))
    public = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    active = Case.objects.filter(reference__startswith=PREFIX, status=Status.ACTIVE).order_by("pk").first()
    assert active is not None

    def cold_figures() -> Any:
        cache.delete("figures:public")
        return public.get(reverse("figures"), secure=True)

    pages: dict[str, Callable[[], Any]] = {
        "home page (baseline)": lambda: public.get(reverse("home"), secure=True),
        "coordinator dashboard": lambda: coordinator.get(reverse("dashboard"), secure=True),
        "coordinator case page": lambda: coordinator.get(reverse("case_detail", args=[active.reference]), secure=True),
        "coordinator report": lambda: coordinator.get(reverse("report"), secure=True),
        "coordinator report CSV": lambda: coordinator.get(reverse("report_csv"), secure=True),
        "public figures, cold cache": cold_figures,
        f"case page, {MESSAGES:,} messages": lambda: resident.get(
            reverse("case_detail", args=[chatty.reference]), secure=True
        ),
    }
    results = {}
    for name, fetch in pages.items():
        response = fetch()
        assert response.status_code == 200, (name, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            fetch()
        statements = len(queries)
        reset_queries()
        assert not settings.DEBUG
        results[name] = (_p50(fetch), statements, len(response.content))
    return results


def pages() -> None:
    from django.conf import settings
    from django.test.utils import override_settings

    # Called from bench/__main__ the settings may be the development ones: no query log at least.
    # Static files by name, not through the manifest collectstatic would write (a dict lookup).
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(
        DEBUG=False,
        ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
        STORAGES={**settings.STORAGES, "staticfiles": plain},
    ):
        _pages()


def _pages() -> None:
    from django.core.management import call_command

    from consult.models import Case

    call_command("migrate", verbosity=0)
    cast = Cast()
    small: dict[str, tuple[float, int, int]] = {}
    if Case.objects.filter(reference__startswith=PREFIX).count() <= SMALL:
        start = time.perf_counter()
        _grow(cast, SMALL)
        small = _measure(cast)
        print(f"seeded {SMALL:,} cases in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    _grow(cast, TARGET)
    print(f"{Case.objects.count():,} cases ({time.perf_counter() - start:.1f} s to seed)")
    large = _measure(cast)
    from consult import figures

    # The tally the pages add up says what a rescan of every case says.
    assert figures.compute() == figures.compute(rescan=True)

    baseline = large["home page (baseline)"][0]
    print(f"\n{'page (p50, DEBUG off)':<34} {'1,000 cases':>12} {f'{TARGET:,} cases':>14} {'x home':>8} "
          f"{'x 1k':>7} {'queries':>8} {'KB':>7}")
    print("-" * 98)
    for name, (seconds, queries, size) in large.items():
        before = small.get(name)
        print(
            f"{name:<34} {f'{before[0] * 1000:.1f} ms' if before else '-':>12} {seconds * 1000:11.1f} ms "
            f"{seconds / baseline:8.2f} {f'{seconds / before[0]:7.2f}' if before else '-':>7} {queries:8d} "
            f"{size / 1024:7.1f}"
        )


if __name__ == "__main__":
    _setup_standalone()
    pages()

"""Claims under contention: CLAIMERS threads, each on its own database connection, take cases from
one queue of QUEUE waiting cases through `case_claim_next`, then through the bare statement (one
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)` per claim) on a fresh queue in
the same run. Reports claims per second, the median claim, their ratio and the double claims (each
case must be claimed once). PostgreSQL only: SQLite serialises every writer.

Claims are made as a view under daphne makes them: from threads working for a running event loop
(BENCH_CLAIM_SHAPE=threads: from plain threads, as a management command would). Run with the
other benchmarks (`make bench` with DATABASE_URL set to PostgreSQL) or alone:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/consult_claims .venv/bin/python -m bench.claims`.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

CLAIMERS = int(os.environ.get("BENCH_CLAIMERS", "16"))
QUEUE = int(os.environ.get("BENCH_CLAIM_QUEUE", "10000"))
# Each side runs this long or until its queue is empty, whichever comes first.
SECONDS = float(os.environ.get("BENCH_CLAIM_SECONDS", "8"))
SKILLS = 4
# "server": CLAIMERS threads working for a running event loop, as views run under daphne (their
# broadcasts handed to the loop). "threads": plain threads, each waiting for its broadcasts.
SHAPE = os.environ.get("BENCH_CLAIM_SHAPE", "server")
PREFIX = f"claims{os.getpid()}"


def _raw_claim_sql() -> str:
    from consult.models import Case

    table = Case._meta.db_table
    declined = Case.declined_by.through._meta.db_table
    # The same line as the service (status, kind, skills, never a case this professional declined,
    # -priority, submitted_at, pk), taken and written in one statement.
    return f"""
        UPDATE {table} SET status = 'active', assignee_id = %(me)s, assigned_at = now(),
               accepted_at = now(), first_response_at = coalesce(first_response_at, now())
        WHERE id = (
            SELECT c.id FROM {table} c
            WHERE c.status = 'waiting' AND c.kind = %(kind)s AND c.skill_id = ANY(%(skills)s)
              AND NOT EXISTS (SELECT 1 FROM {declined} d WHERE d.case_id = c.id AND d.professional_id = %(me)s)
            ORDER BY c.priority DESC, c.submitted_at, c.id
            FOR UPDATE SKIP LOCKED LIMIT 1
        )
        RETURNING id
    """  # noqa: S608


def _seed(skills: list, resident: Any) -> None:
    """QUEUE waiting cases over the skills, with mixed priorities and submission times."""
    from django.db import connection
    from django.utils import timezone

    from consult.models import Case, Kind, Status
    from consult.tally import tally_rebuild

    Case.objects.filter(reference__startswith="B").filter(skill__in=skills).delete()
    now = timezone.now()
    Case.objects.bulk_create(
        (
            Case(
                reference=f"B{i:07d}",
                kind=Kind.MEDICAL,
                skill=skills[i % len(skills)],
                resident=resident,
                status=Status.WAITING,
                priority=(i * 7) % 3,
                description="bench",
                submitted_at=now - timedelta(seconds=QUEUE - i),
                waiting_at=now,
            )
            for i in range(QUEUE)
        ),
        batch_size=2000,
    )
    # Written around the services: their figures' tally counted afresh, so that a claim finds its
    # bucket's row as in production (where the submission made it) and pays for writing it.
    tally_rebuild()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Case._meta.db_table}")


def _run(claim: Callable[[object], int | None], professionals: list) -> tuple[float, list[float], list[int]]:
    return _run_in_server(claim, professionals) if SHAPE == "server" else _run_in_threads(claim, professionals)


def _run_in_server(
    claim: Callable[[object], int | None], professionals: list
) -> tuple[float, list[float], list[int]]:
    """Like `_run_in_threads`, each claim a `sync_to_async` call from one event loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import sync_to_async

    from realtime.events import background_settled

    durations: list[float] = []
    claimed: list[int] = []
    executor = ThreadPoolExecutor(max_workers=len(professionals))

    async def work(professional: object, deadline: float) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            pk = await sync_to_async(claim, thread_sensitive=False)(professional)
            if pk is None:
                return
            durations.append(time.perf_counter() - start)
            claimed.append(pk)

    async def main() -> float:
        asyncio.get_running_loop().set_default_executor(executor)
        start = time.perf_counter()
        await asyncio.gather(*(work(p, start + SECONDS) for p in professionals))
        await background_settled()
        return time.perf_counter() - start

    wall = asyncio.run(main())
    executor.shutdown(wait=True)  # the threads' connections close with them
    return wall, durations, claimed


def _run_in_threads(
    claim: Callable[[object], int | None], professionals: list
) -> tuple[float, list[float], list[int]]:
    """CLAIMERS threads claiming until the queue is empty or SECONDS pass. Returns the wall time,
    each claim's duration and every claimed case id."""
    from django.db import connection

    barrier = threading.Barrier(len(professionals) + 1)
    durations: list[float] = []
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    deadline = [0.0]

    def work(professional: object) -> None:
        mine: list[int] = []
        times: list[float] = []
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            while time.perf_counter() < deadline[0]:
                start = time.perf_counter()
                pk = claim(professional)
                if pk is None:
                    break
                times.append(time.perf_counter() - start)
                mine.append(pk)
        except BaseException as error:
            errors.append(error)
        finally:
            with lock:
                claimed.extend(mine)
                durations.extend(times)
            connection.close()

    threads = [threading.Thread(target=work, args=(p,)) for p in professionals]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + SECONDS + 60  # set properly once everyone is connected
    barrier.wait(timeout=30)
    start = time.perf_counter()
    deadline[0] = start + SECONDS
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, durations, claimed


def run() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        print(f"{'claims under contention':<44} skipped: needs PostgreSQL (DATABASE_URL), not {connection.vendor}")
        return

    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.test.utils import CaptureQueriesContext

    from consult import services
    from consult.models import Case, CaseEvent, Kind, Professional, Role, Skill, Status, User, Verb
    from consult.services import claim_statement

    password = make_password(None)
    skills = [
        Skill.objects.create(
            kind=Kind.MEDICAL,
            code=f"{PREFIX}-{n}",
            name_zh="测试",
            name_en="Bench",
            office_zh="办",
            office_en="Office",
            office_phone="0",
            response_hours=24,
        )
        for n in range(SKILLS)
    ]
    resident = User.objects.create(
        phone=f"138{os.getpid() % 10**8:08d}", name="居民", role=Role.RESIDENT, password=password
    )
    professionals = []
    for n in range(CLAIMERS):
        user = User.objects.create(
            phone=f"139{(os.getpid() * 100 + n) % 10**8:08d}", name=f"医生{n}", role=Role.DOCTOR, password=password
        )
        professional = Professional.objects.create(
            user=user, kind=Kind.MEDICAL, organisation="医院", city="杭州", capacity=30_000, on_duty=True
        )
        # Two skills each, every skill shared by several claimers.
        professional.skills.add(skills[n % SKILLS], skills[(n + 1) % SKILLS])
        professionals.append(professional)

    try:
        # The service, as a view calls it.
        def through_service(professional: object) -> int | None:
            case = services.case_claim_next(professional=professional)  # type: ignore[arg-type]
            return None if case is None else case.pk

        def doubles(ids: list[int]) -> int:
            """Cases claimed more than once: by the ids the claimers got back, by the timeline, and
            every case the claimers were given is the one active case of the run."""
            found = sum(n - 1 for n in Counter(ids).values() if n > 1)
            events = CaseEvent.objects.filter(case__skill__in=skills, verb=Verb.CLAIMED)
            found += sum(n - 1 for n in Counter(events.values_list("case_id", flat=True)).values() if n > 1)
            active = set(Case.objects.filter(skill__in=skills, status=Status.ACTIVE).values_list("pk", flat=True))
            return found + len(active ^ set(ids))

        _seed(skills, resident)
        with CaptureQueriesContext(connection) as queries:
            counted = through_service(professionals[0])
        framing = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "PREPARE")  # once per connection
        statements = sum(1 for q in queries.captured_queries if not q["sql"].upper().startswith(framing))
        service_wall, service_times, service_ids = _run(through_service, professionals)
        found = doubles([*service_ids, *([counted] if counted else [])])

        # The bare statement, in autocommit (its own transaction), on a fresh queue.
        sql = _raw_claim_sql()
        skill_ids = {p.pk: list(p.skills.values_list("pk", flat=True)) for p in professionals}

        def raw(professional: object) -> int | None:
            pk = professional.pk  # type: ignore[attr-defined]
            with connection.cursor() as cursor:
                cursor.execute(sql, {"me": pk, "kind": Kind.MEDICAL, "skills": skill_ids[pk]})
                row = cursor.fetchone()
            return None if row is None else int(row[0])

        _seed(skills, resident)
        raw_wall, raw_times, raw_ids = _run(raw, professionals)
        found += doubles(raw_ids)

        # The service again with its statement prepared once per connection, as it runs with
        # persistent connections (DB_CONN_MAX_AGE, the default with a database server).
        prepared_rate = prepared_p50 = None
        if not claim_statement._may_prepare(connection) and statements == 1:
            options = connection.settings_dict.setdefault("OPTIONS", {})
            options["prepare_threshold"] = 5
            try:
                _seed(skills, resident)
                prepared_wall, prepared_times, prepared_ids = _run(through_service, professionals)
            finally:
                del options["prepare_threshold"]
            found += doubles(prepared_ids)
            prepared_rate = len(prepared_ids) / prepared_wall
            prepared_p50 = statistics.median(prepared_times)

        service_rate = len(service_ids) / service_wall
        raw_rate = len(raw_ids) / raw_wall
        layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).rsplit(".", 1)[-1]
        prepared = ", prepared" if claim_statement._may_prepare(connection) and statements == 1 else ""
        print(
            f"{f'case_claim_next ({CLAIMERS} claimers, {QUEUE:,} queue)':<44} "
            f"{service_rate:9.1f} /s   p50 {statistics.median(service_times) * 1000:8.1f} ms   "
            f"{statements} statement(s){prepared}, {layer}, {SHAPE}"
        )
        if prepared_rate is not None and prepared_p50 is not None:
            print(
                f"{'case_claim_next, statement prepared':<44} "
                f"{prepared_rate:9.1f} /s   p50 {prepared_p50 * 1000:8.1f} ms   as with persistent connections"
            )
        print(
            f"{'raw UPDATE ... SKIP LOCKED (same run)':<44} "
            f"{raw_rate:9.1f} /s   p50 {statistics.median(raw_times) * 1000:8.1f} ms"
        )
        also = f", prepared x{prepared_rate / raw_rate:.2f}" if prepared_rate is not None else ""
        print(
            f"{'case_claim_next / raw statement':<44} x{service_rate / raw_rate:7.2f} of the raw rate{also} "
            f"(goal >= 0.5)   {found} double claims"
        )
    finally:
        # Leave a shared PostgreSQL database as it was (the other benchmarks create their own rows).
        from consult.models import Message

        cases = Case.objects.filter(skill__in=skills)
        Message.objects.filter(case__in=cases).delete()
        CaseEvent.objects.filter(case__in=cases).delete()
        Case.declined_by.through.objects.filter(case__in=cases).delete()
        cases.delete()
        users = [p.user_id for p in professionals] + [resident.pk]
        Professional.objects.filter(pk__in=[p.pk for p in professionals]).delete()
        User.objects.filter(pk__in=users).delete()
        Skill.objects.filter(pk__in=[s.pk for s in skills]).delete()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run()

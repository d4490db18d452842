"""/metrics: refused from outside, and the platform's own figures as a real socket moves them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from consult import services
from consult.models import Case, Priority, Professional, Skill, Status, User
from notices.models import Notice, NoticeStatus
from tests.realtime.conftest import QUEUE_PATH, Connect, room_path, say

OUTSIDE = "203.0.113.9"


def scrape(client: Client | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content[:200]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_it_refuses_metrics_to_an_address_outside_the_allowed_networks(settings: Any) -> None:
    assert Client(REMOTE_ADDR=OUTSIDE).get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR=f"::ffff:{OUTSIDE}").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200
    # A client's own X-Forwarded-For is not read without trusted proxies.
    assert Client(REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1").get("/metrics").status_code == 403
    # Behind one proxy on this host, the address the proxy saw counts, not the proxy's.
    settings.TRUSTED_PROXIES = 1
    assert Client(HTTP_X_FORWARDED_FOR=f"127.0.0.1, {OUTSIDE}").get("/metrics").status_code == 403
    assert Client(HTTP_X_FORWARDED_FOR="10.1.2.3").get("/metrics").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert Client(HTTP_X_FORWARDED_FOR="10.1.2.3").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_it_serves_metrics_to_loopback_with_djangos_and_the_platforms() -> None:
    Client().get("/health/live")
    samples = scrape()
    assert any(name.startswith("django_http_requests_total") for name, _labels in samples)
    assert ("consult_chat_messages_total", ()) in samples
    assert value(samples, "consult_notices", status="failed") == 0


@pytest.mark.django_db
def test_it_counts_the_cases_waiting_per_service_and_how_long_the_first_has_waited(
    alice: User, bob: User, respiratory: Skill, cardiology: Skill
) -> None:
    # Nobody is on duty: every case waits in its service's line.
    for who in (alice, bob):
        services.case_submit(resident=who, skill=respiratory, description="咳嗽两周。", priority=Priority.NORMAL)
    first = Case.objects.filter(skill=respiratory).order_by("submitted_at").first()
    assert first is not None and first.status == Status.WAITING and first.submitted_at is not None
    Case.objects.filter(pk=first.pk).update(submitted_at=first.submitted_at - timedelta(days=365))

    with CaptureQueriesContext(connection) as queries:
        samples = scrape()

    assert value(samples, "consult_queue_waiting", service=respiratory.code, kind=respiratory.kind) == 2
    assert value(samples, "consult_queue_waiting", service=cardiology.code, kind=cardiology.kind) == 0
    oldest = value(samples, "consult_queue_oldest_wait_seconds", service=respiratory.code, kind=respiratory.kind)
    assert 365 * 86400 <= oldest < 366 * 86400
    assert value(samples, "consult_queue_oldest_wait_seconds", service=cardiology.code, kind=cardiology.kind) == 0
    # The services' list, the lines grouped in one query, the outbox: not a query per service.
    assert len(queries) == 3, [q["sql"] for q in queries]


@pytest.mark.django_db
def test_it_reads_the_lines_through_the_queue_index_on_postgresql(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("the plan of PostgreSQL (services pass)")
    from consult.metrics import PlatformCollector

    with CaptureQueriesContext(connection) as queries:
        list(PlatformCollector().collect())
    lines = next(q["sql"] for q in queries if "GROUP BY" in q["sql"] and "consult_case" in q["sql"])
    with connection.cursor() as cursor:
        # Tables of a test are too small for the planner to want an index: ask whether it can use one.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {lines}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "case_queue_idx" in plan or "case_claim_idx" in plan, plan


@pytest.mark.django_db
def test_it_counts_failed_notices(alice: User) -> None:
    from notices.services import notify

    notify(user=alice, kind="verification_code", params={"code": "123456"}, language="zh-hans", urgent=True)
    Notice.objects.update(status=NoticeStatus.FAILED)
    assert value(scrape(), "consult_notices", status="failed") == Notice.objects.count() >= 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_it_counts_messages_through_a_real_socket_and_open_sockets_as_they_open_and_close(
    connect: Connect, alice: User, doctor: Professional, coordinator: User, case: Case
) -> None:
    from channels.db import database_sync_to_async

    before = await database_sync_to_async(scrape)()
    room = await connect(alice, room_path(case.reference))
    feed = await connect(coordinator, QUEUE_PATH)
    assert room.accepted and feed.accepted
    opened = await database_sync_to_async(scrape)()
    await say(room, "医生您好", "m-1")
    await say(room, "医生您好", "m-1")  # a resend of the same message is not a new one
    await say(room, "还在咳", "m-2")
    await room.disconnect()
    await feed.disconnect()
    after = await database_sync_to_async(scrape)()

    for kind in ("case_room", "queue_feed"):
        assert value(opened, "consult_open_sockets", kind=kind) == value(before, "consult_open_sockets", kind=kind) + 1
        assert value(after, "consult_open_sockets", kind=kind) == value(before, "consult_open_sockets", kind=kind)
    assert value(after, "consult_chat_messages_total") == value(before, "consult_chat_messages_total") + 2


COUNT_AND_SCRAPE = """
import sys
import django
django.setup()
from django.test import Client
from consult.metrics import CHAT_MESSAGES, OPEN_SOCKETS

CHAT_MESSAGES.inc(int(sys.argv[1]))
OPEN_SOCKETS.labels("case_room").inc(int(sys.argv[1]))
if sys.argv[2] == "scrape":
    sys.stdout.write(Client(HTTP_HOST="127.0.0.1").get("/metrics").content.decode())
"""


@pytest.mark.django_db
def test_it_sums_every_processs_counters_from_a_multiprocess_folder(tmp_path: Any) -> None:
    import os

    from tests.live import database_url, run_python

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DATABASE_URL": database_url()}
    env.pop("CONSULT_REQUIRE_SERVICES", None)

    def run(count: int, then: str) -> str:
        return run_python(COUNT_AND_SCRAPE, str(count), then, env=env, timeout=60, check=True).stdout

    run(3, "exit")  # a process that counted and has exited (a restarted daphne)
    page = run(4, "scrape")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }
    assert samples[("consult_chat_messages_total", ())] == 7  # counters: every process's, summed
    assert samples[("consult_open_sockets", (("kind", "case_room"),))] == 4  # sockets: the live processes'

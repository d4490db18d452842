"""The database pool (DB_POOL_SIZE) under a real daphne on PostgreSQL: a burst of requests opens no
more server connections than the pool holds, and connections the server kills (a restart, an
operator's pg_terminate_backend) are replaced by the pool's check before use, not answered with 500.

Connections are counted on the server (pg_stat_activity) by an application_name given to each daphne
in its DATABASE_URL. The same burst on a daphne without a pool (persistent connections, one per
request thread) is the baseline that shows the count can be exceeded.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.cluster import DaphneProcess, production_env
from tests.live import database_url

POOL = 3
BURST = 60  # requests
AT_ONCE = 20  # in flight together

needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's")


def server_connections(name: str) -> list[int]:
    """The server processes of the connections `name` holds."""
    with psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=True) as watcher:
        rows = watcher.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name]).fetchall()
    return [row[0] for row in rows]


class Watch:
    """Samples the number of `name`'s server connections every 10 ms while a burst runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.most = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=True) as watcher:
            while not self.stop.is_set():
                count = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.name]
                ).fetchone()
                self.most = max(self.most, int(count[0]) if count else 0)
                time.sleep(0.01)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def burst(url: str, count: int = BURST) -> list[int]:
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return list(pool.map(fetch, [url] * count))


@pytest.fixture
def start_daphne(tmp_path: Path) -> Iterator[Callable[..., DaphneProcess]]:
    started: list[DaphneProcess] = []

    def start(name: str, **env: str) -> DaphneProcess:
        database = f"{database_url()}?application_name={name}"
        # No Redis needed: one daphne, the in-memory layer (production_env says SINGLE_MACHINE).
        daphne = DaphneProcess(production_env("", database, **env), tmp_path, name).start()
        started.append(daphne)
        return daphne.wait()

    yield start
    for daphne in started:
        daphne.stop()


@pytest.mark.django_db(transaction=True)
@needs_postgresql
def test_a_burst_of_requests_opens_no_more_connections_than_the_pool_and_killed_ones_are_replaced(
    start_daphne: Callable[..., DaphneProcess],
) -> None:
    tag = f"consult-pool-{os.getpid()}"
    pooled = start_daphne(f"{tag}-pooled", DB_POOL_SIZE=str(POOL), DB_CONN_MAX_AGE="0")
    unpooled = start_daphne(f"{tag}-unpooled", DB_CONN_MAX_AGE="60")
    url = "http://127.0.0.1:{}/api/v1/services/"

    with Watch(f"{tag}-pooled") as watch_pooled:
        started = time.monotonic()
        answers = burst(url.format(pooled.port))
        pooled_seconds = time.monotonic() - started
    with Watch(f"{tag}-unpooled") as watch_unpooled:
        started = time.monotonic()
        baseline = burst(url.format(unpooled.port))
        unpooled_seconds = time.monotonic() - started
    print(
        f"\n{BURST} requests, {AT_ONCE} at once: pool of {POOL}: at most {watch_pooled.most} server connections "
        f"({pooled_seconds:.2f} s); no pool: {watch_unpooled.most} ({unpooled_seconds:.2f} s)"
    )

    assert answers == [200] * BURST and baseline == [200] * BURST
    assert 1 <= watch_pooled.most <= POOL
    assert watch_unpooled.most > POOL  # the burst does ask for more than the pool gives

    # The server kills every connection of the pool (as a restart or an operator would).
    killed = server_connections(f"{tag}-pooled")
    assert killed
    with psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=True) as admin:
        for pid in killed:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while set(killed) & set(server_connections(f"{tag}-pooled")) and time.monotonic() < deadline:
        time.sleep(0.05)

    with Watch(f"{tag}-pooled") as watch_after:
        after = burst(url.format(pooled.port))
    replaced = server_connections(f"{tag}-pooled")
    print(
        f"killed {len(killed)} pooled connections; the next {BURST} requests: {sorted(set(after))}, "
        f"at most {watch_after.most} connections, now {len(replaced)} (none of the killed)"
    )

    assert after == [200] * BURST
    assert not set(killed) & set(replaced)
    assert 1 <= watch_after.most <= POOL
    assert "Traceback" not in pooled.log.read_text(errors="replace")


def test_the_claim_statement_is_prepared_on_pooled_connections_and_never_behind_pgbouncer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pooled connection keeps its server session between requests; PgBouncer (DB_PGBOUNCER: no
    # pool, DB_CONN_MAX_AGE=0) hands the session to someone else after each transaction.
    from consult.services.claim_statement import _may_prepare

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"pool": {"min_size": 1, "max_size": 4}})
    assert _may_prepare(connection)
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
    assert not _may_prepare(connection)

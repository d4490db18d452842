"""Redis behind Sentinel (REDIS_SENTINELS): the channel layer, the cache, the sockets' limit
counter, the Celery broker and a task run by a real worker work through the master the sentinel
names, and again within seconds on the replica it promotes after the master is killed (SIGKILL).
Real processes: a redis master, a replica and a sentinel of our own (tests/sentinel.py), and a
Python process with the project's settings given only the sentinels' address, as a daphne or a
worker would be."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import run_python
from tests.sentinel import SentinelSet


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    redis = SentinelSet(tmp_path)
    try:
        yield redis.start()
    finally:
        redis.stop()


@pytest.mark.slow
def test_the_layer_cache_and_broker_work_through_sentinel_and_again_after_a_failover(
    sentinels: SentinelSet, tmp_path: Path
) -> None:
    assert sentinels.master_address()[1] == sentinels.master_port
    master = sentinels.processes["master"]
    outer = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CONSULT_REQUIRE_SERVICES", "DEBUG")
    env = {
        **{k: v for k, v in os.environ.items() if k not in outer},
        **sentinels.env,
        "DJANGO_SETTINGS_MODULE": "consult.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CHANNELS_PREFIX": f"sentinel-{os.getpid()}",
        "SENTINEL_PROBE_MASTER_PID": str(master.pid),
        "LOG_LEVEL": "ERROR",
    }

    result = run_python("from tests.sentinel import probe; probe()", env=env, timeout=90)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nafter SIGKILL of the master: {figures}")
    assert master.wait(timeout=5) == -9
    # The sentinel promoted the replica, and every client followed it there.
    assert sentinels.master_address()[1] == sentinels.replica_port
    for part in ("resync", "layer", "cache", "limits", "broker", "task"):
        assert figures[f"{part}_seconds"] < 15, (part, figures)
    assert figures["cache_count"] == 2  # the count made before the failover was replicated, then raised

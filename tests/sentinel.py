"""Redis behind Sentinel on this machine, for tests: a master, a replica (`--replicaof`) and one
sentinel (quorum 1, a master unanswered for a second is down), each our own redis-server on a spare
loopback port; and `probe`, run in a process whose settings name the sentinels (REDIS_SENTINELS):
the channel layer, the cache and the Celery broker work, the master is killed, and it measures how
long each takes to work again on the replica the sentinel promotes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from consult.celery import app
from tests.cluster import HOST, REDIS_SERVER, START_TIMEOUT, HarnessError, spare_port, stop_process, wait_for_port

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class SentinelSet:
    """A master, a replica of it and a sentinel watching them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master_port, self.replica_port, self.sentinel_port = spare_port(), spare_port(), spare_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, port: int, arguments: list[str]) -> None:
        if not os.access(REDIS_SERVER, os.X_OK):
            raise HarnessError(f"{REDIS_SERVER} is not installed")
        log = self.directory / f"{name}.log"
        self.processes[name] = subprocess.Popen(
            [REDIS_SERVER, *arguments],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(port, self.processes[name], log, name, START_TIMEOUT)

    def start(self) -> SentinelSet:
        plain = ["--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._start("master", self.master_port, ["--port", str(self.master_port), *plain, "--dir", str(self.directory)])
        replica_dir = self.directory / "replica"
        replica_dir.mkdir(exist_ok=True)
        self._start(
            "replica",
            self.replica_port,
            [
                "--port",
                str(self.replica_port),
                *plain,
                "--dir",
                str(replica_dir),
                "--replicaof",
                HOST,
                str(self.master_port),
            ],
        )
        # Sentinel rewrites its configuration file: one of its own, in the test's folder.
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind {HOST}\ndaemonize no\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} {HOST} {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self._start("sentinel", self.sentinel_port, [str(config), "--sentinel"])
        self.wait_until_watched()
        return self

    def sentinel(self, *command: str) -> Any:
        import redis

        client = redis.Redis(host=HOST, port=self.sentinel_port, socket_timeout=2, decode_responses=True)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def master_address(self) -> tuple[str, int]:
        host, port = self.sentinel("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        return host, int(port)

    def wait_until_watched(self, timeout: float = 20.0) -> None:
        """Until the replica is in sync and the sentinel knows it (else it has nobody to promote)."""
        import redis

        replica = redis.Redis(host=HOST, port=self.replica_port, socket_timeout=2, decode_responses=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                synced = replica.info("replication").get("master_link_status") == "up"
                known = self.sentinel("SENTINEL", "replicas", MASTER_NAME)
                if synced and known:
                    return
                time.sleep(0.1)
        finally:
            replica.close()
        raise HarnessError(f"the sentinel did not see a synced replica within {timeout} s")

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_SENTINELS": f"{HOST}:{self.sentinel_port}", "REDIS_SENTINEL_MASTER": MASTER_NAME}

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)


# --- run in a process whose settings name the sentinels ------------------------------------------


@app.task(name="tests.sentinel.mark", ignore_result=True)
def mark(key: str) -> None:
    """Run by a real worker: leaves `key` in the cache for the probe to see."""
    from django.core.cache import cache

    cache.set(key, 1, timeout=60)


BOUND_SECONDS = 30.0


async def _until_works(what: str, attempt: Any, started: float) -> float:
    """Seconds from `started` until `attempt()` succeeds (tried every 0.1 s, at most BOUND_SECONDS)."""
    last: BaseException | None = None
    while time.monotonic() - started < BOUND_SECONDS:
        try:
            await attempt()
            return time.monotonic() - started
        except Exception as error:  # a failover in progress: connection refused, read-only replica, ...
            last = error
            await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not work again within {BOUND_SECONDS} s: {last!r}")


async def _probe(master_pid: int) -> dict[str, Any]:
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.core.cache import cache

    from consult.celery import app
    from consult.sentinel import async_client

    layer: Any = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("sentinel-probe", channel)
    counter = async_client(str(settings.CACHES["default"]["LOCATION"]), socket_timeout=2, socket_connect_timeout=2)
    sent = 0

    async def layer_round_trip() -> None:
        nonlocal sent
        sent += 1
        await layer.group_send("sentinel-probe", {"type": "probe", "n": sent})
        while True:  # earlier sends may arrive late; a resync may come first
            message = await asyncio.wait_for(layer.receive(channel), 2)
            if message.get("n") == sent:
                return

    def cache_count() -> None:
        cache.add("sentinel-probe", 0, timeout=60)
        cache.incr("sentinel-probe")

    def broker_round_trip() -> None:
        with app.connection_for_write() as connection:
            queue = connection.SimpleQueue("sentinel-probe")
            try:
                queue.put({"n": 1})
                queue.get(timeout=2).ack()
            finally:
                queue.close()

    async def cache_works() -> None:
        await asyncio.to_thread(cache_count)

    async def limits_count_works() -> None:
        await counter.incr("consult:sentinel-probe-async")

    async def broker_works() -> None:
        await asyncio.to_thread(broker_round_trip)

    async def task_runs() -> None:
        # Sent (the publish may fail mid-failover: tried again) and run by the worker within 5 s.
        key = f"sentinel-probe-task-{uuid.uuid4().hex}"
        await asyncio.to_thread(mark.delay, key)
        for _ in range(50):
            if await asyncio.to_thread(cache.get, key):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("the task did not run within 5 s")

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "consult",
            "worker",
            "--loglevel",
            "WARNING",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
            "--include",
            "tests.sentinel",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    try:
        return await _failover(
            master_pid,
            (layer_round_trip, cache_works, limits_count_works, broker_works),
            task_runs,
            layer,
            channel,
            cache,
        )
    finally:
        stop_process(worker)
        await layer.flush()
        await counter.aclose()


async def _failover(
    master_pid: int, checks: Any, task_runs: Any, layer: Any, channel: str, cache: Any
) -> dict[str, Any]:
    layer_round_trip, cache_works, limits_count_works, broker_works = checks
    before = time.monotonic()
    for check in checks:
        await check()
    figures: dict[str, Any] = {"before_seconds": round(time.monotonic() - before, 3)}
    figures["worker_ready_seconds"] = round(await _until_works("the worker", task_runs, time.monotonic()), 2)

    os.kill(master_pid, signal.SIGKILL)
    killed = time.monotonic()
    resynced = asyncio.get_running_loop().create_future()

    async def wait_for_resync() -> None:
        # The receive loop announces `layer.resync` to every local channel once it is back.
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "layer.resync":
                resynced.set_result(time.monotonic() - killed)
                return

    waiter = asyncio.create_task(wait_for_resync())
    figures["resync_seconds"] = round(await asyncio.wait_for(resynced, BOUND_SECONDS), 2)
    await waiter
    figures["layer_seconds"] = round(await _until_works("the channel layer", layer_round_trip, killed), 2)
    figures["cache_seconds"] = round(await _until_works("the cache", cache_works, killed), 2)
    figures["limits_seconds"] = round(await _until_works("the sockets' limits", limits_count_works, killed), 2)
    figures["broker_seconds"] = round(await _until_works("the Celery broker", broker_works, killed), 2)
    figures["task_seconds"] = round(await _until_works("a task through the worker", task_runs, killed), 2)
    figures["cache_count"] = await asyncio.to_thread(cache.get, "sentinel-probe")
    return figures


def probe() -> None:
    """Prints the figures as one JSON line. SENTINEL_PROBE_MASTER_PID names the master to kill."""
    import django

    django.setup()
    print(json.dumps(asyncio.run(_probe(int(os.environ["SENTINEL_PROBE_MASTER_PID"])))))

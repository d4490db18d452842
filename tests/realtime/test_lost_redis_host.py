"""A Redis host that is lost, not stopped: its link goes down, so nothing answers, not even with a
refusal. The channel layer's subscriber must notice within seconds (settings.REDIS_OPTIONS' keepalive
and user timeout), reconnect, and have its clients resync; with the kernel's defaults it would sit
on the dead connection for a quarter of an hour or more while the sentinels promote a replica it
never hears from. Needs root (a network namespace of its own, tests/hosts.py): the services pass."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from realtime.layers import RESYNC_EVENT, ResyncingPubSubChannelLayer
from tests.cluster import REDIS_SERVER
from tests.hosts import Host, Network, wait_for_tcp

pytestmark = pytest.mark.skipif(
    os.environ.get("CONSULT_REQUIRE_SERVICES") != "1", reason="needs root for a network namespace: services pass"
)

NOTICED_WITHIN = 20.0  # seconds: keepalive or user timeout (about 11 s), and a retry


@pytest.fixture
def redis_host(tmp_path: Path) -> Iterator[Host]:
    network = Network()
    try:
        host = network.add_host("redis", 31)
        log = tmp_path / "redis.log"
        process = host.popen(
            [REDIS_SERVER, "--bind", host.address, "--port", "6379", "--save", "", "--appendonly", "no",
             "--protected-mode", "no", "--dir", str(tmp_path)],
            log,
        )
        wait_for_tcp(host.address, 6379, "redis-server", 20, process, log)
        yield host
    finally:
        network.close()


@pytest.mark.asyncio
async def test_a_subscriber_notices_a_lost_redis_host_and_its_clients_resync_when_it_is_back(
    redis_host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    layer = ResyncingPubSubChannelLayer(
        hosts=[{"address": f"redis://{redis_host.address}:6379/0", **settings.REDIS_OPTIONS}]
    )
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await layer.group_send("room", {"type": "hello"})
        assert (await asyncio.wait_for(layer.receive(channel), timeout=5))["type"] == "hello"

        caplog.set_level(logging.WARNING, logger="realtime.layers")
        await asyncio.to_thread(redis_host.link, up=False)
        lost_at = time.monotonic()
        while not any("Redis connection lost" in r.getMessage() for r in caplog.records):
            assert time.monotonic() - lost_at < NOTICED_WITHIN, "the subscriber never noticed the lost host"
            await asyncio.sleep(0.2)
        noticed = time.monotonic() - lost_at
        print(f"lost Redis host noticed after {noticed:.1f} s")

        await asyncio.to_thread(redis_host.link, up=True)
        resync = await asyncio.wait_for(layer.receive(channel), timeout=NOTICED_WITHIN)
        assert resync["type"] == RESYNC_EVENT["type"]
        await layer.group_send("room", {"type": "again"})
        assert (await asyncio.wait_for(layer.receive(channel), timeout=5))["type"] == "again"
    finally:
        await layer.flush()

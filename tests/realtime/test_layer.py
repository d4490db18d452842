"""The Redis channel layer production runs (realtime/layers.py), on our own redis-server: what one
process publishes at once goes out together, in order, and a failure reaches every publisher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio.connection import AbstractConnection

from realtime.layers import ResyncingPubSubChannelLayer
from tests.cluster import RedisServer

PUBLISHES = 200


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def layer(redis: RedisServer) -> AsyncIterator[ResyncingPubSubChannelLayer]:
    layer = ResyncingPubSubChannelLayer(hosts=[redis.url])
    yield layer
    await layer.flush()


async def received(layer: ResyncingPubSubChannelLayer, channel: str, n: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(layer.receive(channel), timeout=5) for _ in range(n)]


@pytest.mark.asyncio
async def test_it_sends_the_publishes_waiting_together_in_one_trip_in_the_order_they_were_made(
    layer: ResyncingPubSubChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "room.message", "n": -1})  # the connection is open
    assert [m["n"] for m in await received(layer, channel, 1)] == [-1]

    trips: list[Any] = []
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        trips.append(command)
        await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    # Many views' broadcasts at once, each its own task, as a server's loop sends them.
    await asyncio.gather(*(layer.group_send("room", {"type": "room.message", "n": n}) for n in range(PUBLISHES)))

    assert len(trips) <= 2  # channels_redis alone: one round trip each, one after the other
    assert [m["n"] for m in await received(layer, channel, PUBLISHES)] == list(range(PUBLISHES))


@pytest.mark.asyncio
async def test_every_publisher_hears_that_redis_is_gone_and_publishing_resumes_when_it_is_back(
    layer: ResyncingPubSubChannelLayer, redis: RedisServer
) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    redis.stop()

    results = await asyncio.wait_for(
        asyncio.gather(*(layer.group_send("room", {"type": "room.message", "n": n}) for n in range(5)),
                       return_exceptions=True),
        timeout=30,
    )
    assert all(isinstance(result, Exception) for result in results), results

    redis.start()
    # The subscription is back once the layer says so (what it published meanwhile is gone).
    assert (await asyncio.wait_for(layer.receive(channel), timeout=10))["type"] == "layer.resync"
    await layer.group_send("room", {"type": "room.message", "n": 5})
    assert await asyncio.wait_for(layer.receive(channel), timeout=5) == {"type": "room.message", "n": 5}


@pytest.mark.asyncio
async def test_it_subscribes_and_unsubscribes_the_sockets_of_a_storm_together_in_the_order_they_came(
    layer: ResyncingPubSubChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets = [await layer.new_channel() for _ in range(100)]
    await layer.group_add("warm", sockets[0])  # the connection is open
    commands: list[bytes] = []
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        commands.append(b"".join(command) if isinstance(command, list) else command)
        await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    # 100 sockets join their rooms at once; then the first half leave while the others join
    # again a room the first half just left (that order decides what stays subscribed).
    await asyncio.gather(*(layer.group_add(f"room-{n}", channel) for n, channel in enumerate(sockets)))
    assert len(commands) <= 2  # one SUBSCRIBE each, one after the other, without the batching
    commands.clear()
    await asyncio.gather(
        *(layer.group_discard(f"room-{n}", sockets[n]) for n in range(50)),
        *(layer.group_add(f"room-{n}", sockets[n + 50]) for n in range(50)),
    )
    assert len(commands) <= 3

    # Every room still followed hears its broadcast; every room left is left.
    for n in range(50):
        await layer.group_send(f"room-{n}", {"type": "room.message", "n": n})
        assert (await asyncio.wait_for(layer.receive(sockets[n + 50]), timeout=5))["n"] == n
    for n in range(50, 100):
        await layer.group_send(f"room-{n}", {"type": "room.message", "n": n})
        assert (await asyncio.wait_for(layer.receive(sockets[n]), timeout=5))["n"] == n
    shard = layer._get_layer()._shards[0]
    assert all(layer._get_layer()._get_group_channel_name(f"room-{n}") in shard._subscribed_to
               for n in range(100))

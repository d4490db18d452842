"""The Redis channel layer production runs: channels_redis's pub/sub layer, which tells the
consumers of this process when it comes back from a lost Redis connection.

Why pub/sub: group membership lives in this process (subscriptions), not in Redis keys that a
restarted Redis forgets, and redis-py subscribes again by itself on reconnect; there is no
blocking pop whose server-side wait can outlast the client's read timeout (the core layer's
`BZPOPMIN` did, closing idle sockets with 1011); a group send is one PUBLISH.

Why the announcement: whatever was published while the connection was down is gone. Every
local channel gets a `layer.resync` event, so each consumer asks its client to resync from the
database, where nothing was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

RESYNC_EVENT = {"type": "layer.resync"}
# How long a failing receive loop waits before trying again (redis-py retries inside each try).
RETRY_SECONDS = 0.5

Item = TypeVar("Item")


class _Batches(Generic[Item]):
    """Items put while a batch is being sent go out together as the next batch, in the order put.
    Each caller waits for its own item and hears the batch's error as its own."""

    def __init__(self, send: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._send = send
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def put(self, item: Item) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        await done

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            error: BaseException | None = None
            try:
                await self._send([item for item, _done in batch])
            except asyncio.CancelledError:  # the loop is closing: nobody waits for ever
                for _item, done in [*batch, *self._waiting]:
                    done.cancel()
                self._waiting = []
                raise
            except Exception as failed:
                error = failed
            for _item, done in batch:
                if not done.done():  # its caller may have given up waiting
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)


class _Shard(RedisSingleShardConnection):
    """Publishes go out together: channels_redis sends one at a time, holding its lock through
    each round trip, so a process could publish only as fast as Redis answered one (a backlog of
    seconds behind 16 claimers, and a ceiling on the chat of every daphne). Here those waiting
    when the last trip ends are sent in one pipeline, still in the order they were made.

    Subscriptions change together too: every socket subscribes its own channel and its groups as
    it connects and unsubscribes them as it closes, one command each under the lock. In a
    reconnect storm the handshakes' subscriptions waited behind thousands of unsubscriptions of
    the sockets that had just dropped. Here the changes waiting when the last command ends go out
    as one SUBSCRIBE or UNSUBSCRIBE per run of the same kind, still in the order made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._publishes = _Batches[tuple[str, bytes]](self._publish_all)
        self._changes = _Batches[tuple[bool, str]](self._change_all)  # (subscribe?, channel)

    async def publish(self, channel: str, message: bytes) -> None:
        await self._publishes.put((channel, message))

    async def _publish_all(self, batch: list[tuple[str, bytes]]) -> None:
        async with self._lock:
            self._ensure_redis()
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, message in batch:
                    pipe.publish(channel, message)
                await pipe.execute()

    async def subscribe(self, channel: str) -> None:
        await self._changes.put((True, channel))

    async def unsubscribe(self, channel: str) -> None:
        await self._changes.put((False, channel))

    async def _change_all(self, batch: list[tuple[bool, str]]) -> None:
        async with self._lock:
            for subscribe, channels in _runs(batch):
                if subscribe:
                    todo = [c for c in dict.fromkeys(channels) if c not in self._subscribed_to]
                else:
                    todo = [c for c in dict.fromkeys(channels) if c in self._subscribed_to]
                if not todo:
                    continue
                self._ensure_redis()
                self._ensure_receiver()
                if subscribe:
                    await self._pubsub.subscribe(*todo)
                    self._subscribed_to.update(todo)
                else:
                    await self._pubsub.unsubscribe(*todo)
                    self._subscribed_to.difference_update(todo)

    async def _do_receiving(self) -> None:
        lost = False
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if lost:
                        # The read succeeded, so redis-py reconnected and subscribed again.
                        lost = False
                        logger.warning("channel layer: Redis connection back; asking clients to resync")
                        self._announce_resync()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as error:
                if not lost:
                    logger.warning("channel layer: Redis connection lost (%s)", error)
                lost = True
                await asyncio.sleep(RETRY_SECONDS)

    def _announce_resync(self) -> None:
        layer: Any = self.channel_layer
        data = layer.channel_layer.serialize(RESYNC_EVENT)
        for queue in list(layer.channels.values()):
            queue.put_nowait(data)


def _runs(batch: list[tuple[bool, str]]) -> list[tuple[bool, list[str]]]:
    """The changes of a batch as runs of the same kind, in order: (subscribe?, channels)."""
    runs: list[tuple[bool, list[str]]] = []
    for subscribe, channel in batch:
        if runs and runs[-1][0] == subscribe:
            runs[-1][1].append(channel)
        else:
            runs.append((subscribe, [channel]))
    return runs


class _LoopLayer(RedisPubSubLoopLayer):
    # Our shards are made from the same host dicts: channels_redis's create_pool copies a host
    # before reading it, so a Sentinel host (`sentinels`, `master_name`, `sentinel_kwargs`:
    # REDIS_SENTINELS in settings) keeps its keys and each new connection asks the sentinels for the
    # master (tests/realtime/test_sentinel.py: resync and publish again 2.6 s after a failover).
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shards: list[RedisSingleShardConnection] = self._shards  # type: ignore[has-type]
        self._shards = [_Shard(shard.host, self) for shard in shards]


class ResyncingPubSubChannelLayer(RedisPubSubChannelLayer):
    """`RedisPubSubChannelLayer` whose consumers hear `layer.resync` after a lost connection."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer

"""What one person may send through the sockets, counted across all their sockets and, with Redis,
across every daphne process: frames of every type, chat messages (the same count as the API's
message limit, consult/api/throttles.py, so switching between app and socket gains nothing) and
the messages catch-ups send back (`hello`, each replaying up to a page of the room).

The counts are consult/limits.py's fixed windows, in the same cache keys. On Redis they are taken
here with redis-py's asyncio client, all the counts of a frame in one round trip, so a frame costs
no hop to a thread (Django's cache API is synchronous). The local-memory cache of a single process
is counted in place (no I/O). If Redis cannot be reached, frames go through
(logged): the room itself then waits on the channel layer, which has the same Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from consult import limits
from consult.limits import Rate
from consult.sentinel import async_client

logger = logging.getLogger(__name__)

# A frame waits at most this long for its counts (a Redis that hangs must not hold up the room).
REDIS_TIMEOUT_SECONDS = 1.0


def frames() -> Rate:
    return Rate(settings.CHAT_FRAMES_PER_10S, 10)


def messages() -> Rate:
    return limits.rate_of("messages")


def replayed() -> Rate:
    """Messages sent back by catch-ups (`hello`): what a client can make the server send."""
    return Rate(settings.CHAT_REPLAYED_PER_MINUTE, 60)


class SocketLimits:
    """One Redis client per event loop (redis-py's asyncio connections belong to the loop that
    made them)."""

    def __init__(self) -> None:
        self.clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()

    def client(self, location: str) -> Redis:
        loop = asyncio.get_running_loop()
        client = self.clients.get(loop)
        if client is None:
            # Behind Sentinel, the master the sentinels name (consult/sentinel.py).
            client = self.clients[loop] = async_client(
                location, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
            )
        return client

    async def take(self, actor: str, counts: Sequence[tuple[str, Rate, int]]) -> float:
        """Add `amount` to each (scope, rate, amount) count of `actor` (0: only look): 0.0 if none is
        over its limit, else the seconds until the fullest window ends. A refused frame counts too:
        hammering does not shorten the wait."""
        now = time.time()
        windows = [(scope, rate, amount, int(now // rate.window) * rate.window) for scope, rate, amount in counts]
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            try:
                async with self.client(str(settings.CACHES["default"]["LOCATION"])).pipeline(transaction=False) as pipe:
                    for scope, rate, amount, start in windows:
                        key = cache.make_key(limits.window_key(scope, actor, start))
                        pipe.incrby(key, amount)
                        pipe.expire(key, rate.window + limits.GRACE_SECONDS)
                    totals = (await pipe.execute())[0::2]
            except (RedisError, OSError) as error:
                logger.warning("socket limits not counted: Redis unavailable (%r)", error)
                return 0.0
        else:  # one process: its own memory, no I/O
            keep = limits.GRACE_SECONDS
            totals = [
                limits.count_in(cache, limits.window_key(scope, actor, start), amount, rate.window + keep)
                for scope, rate, amount, start in windows
            ]
        return max(
            (start + rate.window - now for (_scope, rate, _amount, start), total in zip(windows, totals, strict=True)
             if total > rate.limit),
            default=0.0,
        )


socket_limits = SocketLimits()

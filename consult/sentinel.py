"""Redis behind Sentinel for the clients that take a URL: Django's cache and the sockets' limits
(realtime/limits.py). The channel layer and the Celery broker have Sentinel support of their own
(settings.py gives them the sentinels).

The URL they are given (settings.REDIS_URL) then names only the database and the master's
password; the master's address is asked of the sentinels (settings.REDIS_SENTINELS) whenever a
connection is made, so after a failover the next connection goes to the promoted replica.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool


def _database_and_password(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    found: dict[str, Any] = {"db": int(parts.path.strip("/") or 0)}
    if parts.password:
        found["password"] = unquote(parts.password)
    return found


class SentinelPool(SentinelConnectionPool):
    """Django's RedisCache `pool_class`: it builds its pools with `from_url(LOCATION, **OPTIONS)`,
    so it stays Django's cache (the same `add` and `incr` the limits count with) on Sentinel."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelPool:
        asking = {**settings.REDIS_SENTINEL_KWARGS, "retry": Retry(NoBackoff(), settings.REDIS_SENTINEL_RETRIES)}
        sentinel = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=asking)
        return cls(settings.REDIS_SENTINEL_MASTER, sentinel, **{**_database_and_password(url), **options})


def async_client(url: str, **options: Any) -> AsyncRedis:
    """An asyncio client of the Redis at `url`, or of the sentinels' master when they are set."""
    if not settings.REDIS_SENTINELS:
        return AsyncRedis.from_url(url, **options)
    asking = {**settings.REDIS_SENTINEL_KWARGS, "retry": AsyncRetry(NoBackoff(), settings.REDIS_SENTINEL_RETRIES)}
    sentinel = AsyncSentinel(settings.REDIS_SENTINELS, sentinel_kwargs=asking)
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **{**_database_and_password(url), **options})

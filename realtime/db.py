"""Where the sockets' database work runs: a pool of threads, each with its own (persistent)
connection, instead of the one thread `database_sync_to_async` uses by default. On that one thread
every socket of a process waited in line: for each message's commit before it, and for every event
a consumer received (channels closes old connections there before each one)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=settings.REALTIME_DB_THREADS, thread_name_prefix="realtime-db")


def db(func: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    """`func` run on the sockets' database threads, closing connections past their age around it."""
    return database_sync_to_async(func, thread_sensitive=False, executor=_executor)


def close_connections() -> None:
    """Close the database connection of every one of these threads (at the end of a test run, or
    of a server): each thread closes its own, then waits for the others, so every thread takes one."""
    threads = _executor._max_workers
    barrier = threading.Barrier(threads)

    def close(_n: int) -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    list(_executor.map(close, range(threads)))

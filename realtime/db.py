"""Where the sockets' database work runs: a pool of threads, each with its own (persistent)
connection, instead of the one thread `database_sync_to_async` uses by default. On that one thread
every socket of a process waited in line: for each message's commit before it, and for every event
a consumer received (channels closes old connections there before each one).

Connections are checked as Django checks them between requests (past their age, or after an
error: closed), but the health check (`CONN_HEALTH_CHECKS`, a `SELECT 1` before the first query)
only when the thread's connection has been idle: a socket makes many small calls, and a check
before each one was a tenth of a connect's time in a reconnect storm. A connection that dies
between two close calls fails its query like one that dies during it, and the caller's error
path (an error frame with a retry, or a refused handshake) covers both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import connections

T = TypeVar("T")

# A connection used this recently is not health-checked again before the next call.
CHECK_AFTER_IDLE_SECONDS = 5.0

_executor = ThreadPoolExecutor(max_workers=settings.REALTIME_DB_THREADS, thread_name_prefix="realtime-db")
# A lane of its own for the work that completes sockets already open (their presence rows, their
# hello's page): in a reconnect storm it waited behind every other socket's access check, so no
# client was caught up until nearly all had connected.
_catch_up = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-db-catch-up")
_thread = threading.local()


def _before_call() -> None:
    recent = time.monotonic() - getattr(_thread, "used_at", float("-inf")) < CHECK_AFTER_IDLE_SECONDS
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()  # errors since the last call, or too old: closed
        if recent and connection.connection is not None:
            connection.health_check_done = True  # type: ignore[attr-defined]


def _after_call() -> None:
    # Past its age: closed now rather than left open on an idle thread (CONN_MAX_AGE=0: after
    # every call, as channels does).
    for connection in connections.all(initialized_only=True):
        if connection.close_at is not None and time.monotonic() >= connection.close_at:
            connection.close()


class _OnDatabaseThread(SyncToAsync):
    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        _before_call()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            _thread.used_at = time.monotonic()
            _after_call()


def db(func: Callable[..., T], *, catch_up: bool = False) -> Callable[..., Coroutine[Any, Any, T]]:
    """`func` run on the sockets' database threads (`catch_up`: on the lane of open sockets'
    presence and catch-up reads)."""
    return _OnDatabaseThread(func, thread_sensitive=False, executor=_catch_up if catch_up else _executor)


def close_connections() -> None:
    """Close the database connection of every one of these threads (at the end of a test run, or
    of a server): each thread closes its own, then waits for the others, so every thread takes one."""
    for executor in (_executor, _catch_up):
        threads = executor._max_workers
        barrier = threading.Barrier(threads)

        def close(_n: int, barrier: threading.Barrier = barrier) -> None:
            connections.close_all()
            barrier.wait(timeout=10)

        list(executor.map(close, range(threads)))

"""The one way the rest of the code announces changes to connected clients.

Events are sent only after the surrounding transaction commits, so a client never hears of a
change that was rolled back; a client that misses one catches up from the database.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import operator
import os
import secrets
import threading
import weakref
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


class CaseStatusEvent(TypedDict):
    type: Literal["case.status"]
    reference: str
    status: str


class QueueChangedEvent(TypedDict):
    type: Literal["queue.changed"]
    skill_id: int
    # Names this change: the sockets of a process that hear it work out the line once between them
    # (realtime/lines.py). Not part of what makes two refreshes the same (`_Handover.refresh_now`).
    change: NotRequired[str]


def queue_changed(skill_id: int) -> QueueChangedEvent:
    return {"type": "queue.changed", "skill_id": skill_id, "change": secrets.token_hex(8)}


class CaseMessageEvent(TypedDict):
    type: Literal["case.message"]
    message: dict[str, Any]


class CaseReadEvent(TypedDict):
    type: Literal["case.read"]
    user_id: int
    seq: int


class CasePresenceEvent(TypedDict):
    type: Literal["case.presence"]
    online: list[dict[str, Any]]


class UserLogoutEvent(TypedDict):
    """Closes the user's sockets: only those of the credential `only`, or all but those of `keep`,
    or all (accounts/access.py names credentials)."""

    type: Literal["user.logout"]
    only: NotRequired[str]
    keep: NotRequired[str]


Event = CaseStatusEvent | QueueChangedEvent | CaseMessageEvent | CaseReadEvent | CasePresenceEvent | UserLogoutEvent

# Coordinators' dashboards listen here for every queue change.
DASHBOARD_GROUP = "dashboard"


def case_group(case_id: int) -> str:
    return f"case.{case_id}"


def queue_group(skill_id: int) -> str:
    return f"queue.{skill_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def send_event_on_commit(group: str, event: Event) -> None:
    send_events_on_commit([(group, event)])


def send_events_on_commit(events: Sequence[tuple[str, Event]]) -> None:
    """Several events of one change (a claim announces four), sent after commit in this order and
    handed to the loop that sends them once: each hand-over is a wake-up of that loop, and outside
    a server a wait for it, which under many claimers cost more than the claim's statement."""
    payloads = [(group, dict(event)) for group, event in events]
    transaction.on_commit(lambda: publish_all(payloads))


def publish(group: str, payload: dict[str, Any]) -> None:
    """Send to a group now (see `publish_all`)."""
    publish_all([(group, payload)])


def publish_all(payloads: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Send to groups now, in order. Inside a server (daphne), from the thread a view or consumer
    runs its database work in: handed to the server's event loop without waiting, so that thread
    never waits on Redis. Elsewhere (a management command, a test client): sent from one
    long-lived publisher loop of this process, waiting for it, instead of a new thread, loop and
    Redis connection for every event."""
    layer = get_channel_layer()
    if layer is None or not payloads:
        return
    loop = _server_loop()
    if loop is not None:
        _handover(loop).put(layer, payloads)
        return
    future = _publisher.submit(_send_all(layer, payloads))
    try:
        future.result(timeout=PUBLISH_TIMEOUT)
    except Exception as error:
        future.cancel()
        # The change is committed; a client that missed these events resyncs from the database.
        _not_broadcast(error, ", ".join(f"{p['type']} to {group}" for group, p in payloads))


async def _send_all(layer: Any, payloads: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Each event in turn, those in a row to one group as one (`events.batch`: a claim's line in
    the room and its new status are one trip to Redis, not two); one that fails is logged and the
    others still go."""
    for group, together in itertools.groupby(payloads, key=operator.itemgetter(0)):
        batch = [payload for _group, payload in together]
        payload = batch[0] if len(batch) == 1 else {"type": "events.batch", "events": batch}
        try:
            await layer.group_send(group, payload)
        except Exception as error:
            # The change is committed; a client that missed this event resyncs from the database.
            _not_broadcast(error, f"{', '.join(p['type'] for p in batch)} to {group}")


def _not_broadcast(error: Exception, what: str) -> None:
    """Redis out of reach (a restart, a failover, a lost host) is an outage the layer reports and
    the clients get over by resyncing: a line, no traceback. Anything else is a fault: its traceback."""
    if isinstance(error, RedisConnectionError | RedisTimeoutError | TimeoutError):
        logger.warning("could not broadcast %s: Redis out of reach (%s)", what, error)
    else:
        logger.error("could not broadcast %s", what, exc_info=error)


# Events that only tell a client to look again (its queue, its place in line, the dashboard): one
# sent to a group stands for any number of the same within this many seconds.
REFRESH_EVENTS = frozenset({"queue.changed"})
REFRESH_EVERY_SECONDS = 0.25


class _Handover:
    """Broadcasts from the threads a server's views run in, waiting for its event loop: one
    wake-up of the loop takes all that are waiting. A wake-up per broadcast (a write to the loop's
    self-pipe, under the GIL) cost 16 claimers a third of their claims.

    No lock: the GIL makes the deque's append and popleft atomic, and `wake` is cleared before the
    loop empties the deque, so a broadcast put while it empties is either taken by it or wakes it
    again (a wake-up too many finds nothing, which is harmless).

    Refreshes (REFRESH_EVENTS) are sent to a group at most once per REFRESH_EVERY_SECONDS: one
    that comes sooner is sent when that time is up, once for all that came meanwhile, so the last
    change is always announced. Every claim announces two (its queue and the dashboard): sent one
    by one, 16 claimers kept the loop publishing for seconds after the last claim, and every
    socket on the queue looked again for each."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: collections.deque[tuple[Any, Sequence[tuple[str, dict[str, Any]]]]] = collections.deque()
        self.woken = False
        self.refreshed: dict[tuple[str, tuple[Any, ...]], float] = {}  # (group, event) -> when last sent
        self.refresh_due: set[tuple[str, tuple[Any, ...]]] = set()  # a later send is scheduled for these

    def put(self, layer: Any, payloads: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.waiting.append((layer, payloads))
        if not self.woken:
            self.woken = True
            self.loop.call_soon_threadsafe(self.take)

    def take(self) -> None:
        self.woken = False
        while self.waiting:
            layer, payloads = self.waiting.popleft()
            now = [(group, payload) for group, payload in payloads if self.refresh_now(layer, group, payload)]
            if now:
                run_in_background(_send_all(layer, now), f"broadcast to {', '.join(group for group, _p in now)}")

    def refresh_now(self, layer: Any, group: str, payload: dict[str, Any]) -> bool:
        """Whether to send `payload` now: anything but a refresh, or a refresh not sent to this
        group lately (else one is scheduled, or already is, for when the time is up)."""
        if payload["type"] not in REFRESH_EVENTS:
            return True
        # A refresh's fields are a type and ids (and the name of this one, which never repeats).
        key = (group, tuple(sorted(item for item in payload.items() if item[0] != "change")))
        if key in self.refresh_due:
            return False
        now, last = self.loop.time(), self.refreshed.get(key)
        if last is None or now - last >= REFRESH_EVERY_SECONDS:
            if len(self.refreshed) >= 10_000:  # keep the memory bounded: forget the old ones
                self.refreshed = {k: t for k, t in self.refreshed.items() if now - t < REFRESH_EVERY_SECONDS}
            self.refreshed[key] = now
            return True
        self.refresh_due.add(key)
        run_in_background(self.refresh_later(layer, group, payload, key, last + REFRESH_EVERY_SECONDS - now), "refresh")
        return False

    async def refresh_later(
        self, layer: Any, group: str, payload: dict[str, Any], key: tuple[str, tuple[Any, ...]], delay: float
    ) -> None:
        await asyncio.sleep(delay)
        self.refresh_due.discard(key)
        self.refreshed[key] = self.loop.time()
        await _send_all(layer, [(group, payload)])


_handovers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Handover] = weakref.WeakKeyDictionary()


def _handover(loop: asyncio.AbstractEventLoop) -> _Handover:
    handover = _handovers.get(loop)
    if handover is None:
        # Two threads making it at once both get the first one made (setdefault is atomic).
        handover = _handovers.setdefault(loop, _Handover(loop))
    return handover


PUBLISH_TIMEOUT = 5.0
_pending: set[asyncio.Task[Any]] = set()


def run_in_background(coroutine: Coroutine[Any, Any, Any], what: str) -> None:
    """Run `coroutine` on the running loop without waiting for it; a failure is logged."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _pending.add(task)  # the loop keeps only weak references to tasks

    def done(task: asyncio.Task[Any]) -> None:
        _pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A broadcast: the change is committed, and a client that missed it resyncs.
            logger.error("%s failed", what, exc_info=task.exception())

    task.add_done_callback(done)


async def background_settled() -> None:
    """Wait until the work started with `run_in_background` on this loop is done (tests, and a
    server draining before it stops)."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _pending if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop this code serves: its own thread's, or the one a `sync_to_async`
    thread works for (asgiref records it per thread)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


class _Publisher:
    """One event loop in a daemon thread, for sending from code that runs outside any loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # The process the loop serves and the loop, replaced together (one attribute).
        self.current: tuple[int, asyncio.AbstractEventLoop] | None = None

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        # The lock only guards starting the loop: held around the hand-over too, every sending
        # thread queued on it behind one waiting for the GIL (2.6 ms a claim with 16 claimers).
        current = self.current
        if current is None or current[0] != os.getpid():  # new, or inherited by a forked child
            with self.lock:
                current = self.current
                if current is None or current[0] != os.getpid():
                    loop = asyncio.new_event_loop()
                    threading.Thread(target=loop.run_forever, name="event-publisher", daemon=True).start()
                    self.current = current = (os.getpid(), loop)
        return asyncio.run_coroutine_threadsafe(coroutine, current[1])


_publisher = _Publisher()

"""Presence: who has a socket open on a case. Rows in the database (realtime.models.Connection), so
that every process sees every socket; a process that dies leaves rows that stop counting once
their socket stops pinging, and a periodic job deletes them.

Sockets come and go in bursts (after a restart every client of a process comes back at once), so
a process writes its sockets' rows in batches, as a database commits a group: while one batch is
written, the sockets opening or closing meanwhile wait for the next, which inserts (and deletes)
all their rows in one statement each, reads who is online on every case concerned in one more,
and announces it to each case's room once. A socket alone waits for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.utils import timezone

from realtime.db import db
from realtime.events import case_group

logger = logging.getLogger(__name__)

# How long an announcement to a room may take (during a shutdown the layer may never answer).
ANNOUNCE_SECONDS = 2.0

Online = list[dict[str, Any]]


@dataclass(frozen=True)
class Change:
    case_id: int
    channel_name: str
    user_id: int | None = None  # None: the socket closed


@dataclass
class _Batcher:
    loop: asyncio.AbstractEventLoop
    pending: list[tuple[Change, asyncio.Future[Online]]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None

    async def change(self, change: Change) -> Online:
        future: asyncio.Future[Online] = self.loop.create_future()
        self.pending.append((change, future))
        if self.writer is None or self.writer.done():
            self.writer = self.loop.create_task(self.write_all())
        return await future

    async def write_all(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                online, refused = await db(write, catch_up=True)([change for change, _future in batch])
            except Exception as error:
                for _change, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            await announce(online)
            for change, future in batch:
                if future.done():
                    continue
                if change.channel_name in refused:
                    future.set_exception(IntegrityError(f"presence of {change.channel_name} refused"))
                else:
                    future.set_result(online[change.case_id])


_batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}


def _batcher() -> _Batcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        for old in [old for old in _batchers if old.is_closed()]:
            del _batchers[old]  # the loops of finished test runs
        batcher = _batchers[loop] = _Batcher(loop)
    return batcher


async def opened(*, case_id: int, user_id: int, channel_name: str) -> Online:
    """Record an open socket; announces to the room, and returns, who is online on its case."""
    return await _batcher().change(Change(case_id, channel_name, user_id))


async def closed(*, case_id: int, channel_name: str) -> Online:
    """Forget a closed socket; announces to the room, and returns, who is still online."""
    return await _batcher().change(Change(case_id, channel_name))


def write(changes: list[Change]) -> tuple[dict[int, Online], set[str]]:
    """The rows of a batch of changes, and who is online on each case concerned. Returns that,
    and the channels whose row could not be written (their case is gone)."""
    from realtime.models import Connection

    now = timezone.now()
    rows = [
        Connection(case_id=c.case_id, user_id=c.user_id, channel_name=c.channel_name, seen_at=now)
        for c in changes
        if c.user_id is not None
    ]
    refused: set[str] = set()
    if rows:
        try:
            with transaction.atomic():
                Connection.objects.bulk_create(rows)
        except IntegrityError:
            # One row's case was deleted meanwhile: the others are written one by one.
            for row in rows:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                except IntegrityError:
                    refused.add(row.channel_name)
    gone = [c.channel_name for c in changes if c.user_id is None]
    if gone:
        Connection.objects.filter(channel_name__in=gone).delete()
    return online_on({c.case_id for c in changes}, now=now), refused


def online_on(case_ids: set[int], *, now: Any = None) -> dict[int, Online]:
    """Who is online on each of `case_ids`: one query for them all."""
    from consult.services.messages import ONLINE_WINDOW
    from realtime.models import Connection

    since = (now or timezone.now()) - ONLINE_WINDOW
    online: dict[int, Online] = {case_id: [] for case_id in case_ids}
    rows = (
        Connection.objects.filter(case_id__in=case_ids, seen_at__gte=since)
        .values_list("case_id", "user_id", "user__name")
        .distinct()
        .order_by("user__name", "user_id")
    )
    for case_id, user_id, name in rows:
        online[case_id].append({"id": user_id, "name": name})
    return online


async def announce(online: dict[int, Online]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    sends = [layer.group_send(case_group(case_id), {"type": "case.presence", "online": people})
             for case_id, people in online.items()]
    try:
        await asyncio.wait_for(asyncio.gather(*sends), timeout=ANNOUNCE_SECONDS)
    except Exception as error:
        logger.warning("presence not announced to %d rooms: %r", len(online), error)

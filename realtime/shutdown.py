"""A clean stop on SIGTERM: under daphne, the sockets are closed with 4503 ("server restarting",
which clients take as "reconnect now, maybe elsewhere"; daphne allows no 1012), and their
consumers finish what they received and clean up (presence rows, groups) before daphne stops,
within a bound. Without this, daphne cancels every consumer at once: clients see 1006 and
nothing is cleaned up."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import weakref
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

SERVICE_RESTART = 4503
DRAIN_SECONDS = 10.0

live: weakref.WeakSet[Any] = weakref.WeakSet()  # the open consumers of this process
draining = False


def install() -> None:
    """Take over SIGTERM once daphne's reactor runs (it installs its own handler at start)."""
    if "twisted.internet.reactor" not in sys.modules:
        return  # not under daphne: tests, management commands
    from twisted.internet import reactor

    reactor.callWhenRunning(_take_over_sigterm)


def _take_over_sigterm() -> None:
    loop = asyncio.get_event_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(_drain_then_stop(previous, signum, frame)))

    signal.signal(signal.SIGTERM, on_sigterm)


async def _drain_then_stop(previous: Any, signum: int, frame: FrameType | None) -> None:
    global draining
    if draining:
        return
    draining = True
    started = time.monotonic()
    consumers = list(live)
    logger.warning("SIGTERM: closing %d sockets before stopping", len(consumers))
    for consumer in consumers:
        try:
            await consumer.close(code=SERVICE_RESTART)
        except Exception:
            logger.exception("could not close a socket")
    while live and time.monotonic() - started < DRAIN_SECONDS:
        await asyncio.sleep(0.05)
    if live:
        logger.warning("SIGTERM: %d sockets still open after %.0f s; stopping anyway", len(live), DRAIN_SECONDS)
    if callable(previous):
        previous(signum, frame)
    else:
        raise SystemExit(0)

"""Broadcasts handed from a server's view threads to its event loop (realtime/events.py): every
one sent once, and one wake-up of the loop for all that wait."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from realtime import events

THREADS = 16
EACH = 5  # 80 messages: under the layer's 100 a channel may hold


async def received(layer: Any, channel: str, n: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(layer.receive(channel), timeout=5) for _ in range(n)]


@pytest.mark.asyncio
async def test_it_sends_every_broadcast_of_many_view_threads_once() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("broadcasts-test", channel)

    def view(thread: int) -> None:
        # A view's database thread under daphne: its broadcasts go to the server's loop.
        for n in range(EACH):
            events.publish("broadcasts-test", {"type": "test.event", "thread": thread, "n": n})

    await asyncio.gather(*(sync_to_async(view, thread_sensitive=False)(t) for t in range(THREADS)))
    await events.background_settled()

    got = await received(layer, channel, THREADS * EACH)
    assert Counter((m["thread"], m["n"]) for m in got) == Counter(
        {(t, n): 1 for t in range(THREADS) for n in range(EACH)}
    )
    await layer.group_discard("broadcasts-test", channel)


@pytest.mark.asyncio
async def test_it_wakes_the_loop_once_for_the_broadcasts_waiting_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("wakeups-test", channel)
    loop = asyncio.get_running_loop()
    wakeups: list[Any] = []
    wake = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any) -> Any:
        if getattr(callback, "__self__", None) is handover:  # not sync_to_async's own
            wakeups.append(callback)
        return wake(callback, *args)

    handover = events._handover(loop)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    done = threading.Event()

    def three_views() -> None:
        for n in range(3):
            handover.put(layer, [("wakeups-test", {"type": "test.event", "n": n})])
        done.set()

    # The loop is busy (this coroutine does not yield) while another thread hands over three.
    thread = threading.Thread(target=three_views)
    thread.start()
    assert done.wait(timeout=5)
    thread.join()
    assert len(wakeups) == 1

    await asyncio.sleep(0)  # the loop wakes, takes all three
    await events.background_settled()
    assert sorted(m["n"] for m in await received(layer, channel, 3)) == [0, 1, 2]

    # Once it has taken them, the next hand-over wakes it again.
    await sync_to_async(handover.put, thread_sensitive=False)(layer, [("wakeups-test", {"type": "test.event", "n": 3})])
    await asyncio.sleep(0)
    await events.background_settled()
    assert len(wakeups) == 2
    assert [m["n"] for m in await received(layer, channel, 1)] == [3]
    await layer.group_discard("wakeups-test", channel)

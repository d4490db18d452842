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


class Recording:
    """A layer that keeps what it is asked to send, and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, dict[str, Any]]] = []

    async def group_send(self, group: str, payload: dict[str, Any]) -> None:
        self.sent.append((asyncio.get_running_loop().time(), group, payload))


@pytest.mark.asyncio
async def test_it_sends_a_changes_events_to_one_group_as_one() -> None:
    layer = Recording()
    status = {"type": "case.status", "reference": "M1", "status": "active"}
    line = {"type": "case.message", "message": {"seq": 1}}
    changed = {"type": "queue.changed", "skill_id": 7}

    events._handover(asyncio.get_running_loop()).put(
        layer, [("case.1", line), ("case.1", status), ("queue.7", changed), ("dashboard", changed)]
    )
    await asyncio.sleep(0)
    await events.background_settled()

    assert [(group, payload) for _at, group, payload in layer.sent] == [
        ("case.1", {"type": "events.batch", "events": [line, status]}),
        ("queue.7", changed),
        ("dashboard", changed),
    ]


@pytest.mark.asyncio
async def test_it_sends_a_groups_refreshes_at_most_once_a_while_and_always_the_last() -> None:
    layer = Recording()
    loop = asyncio.get_running_loop()
    handover = events._handover(loop)

    def changed(skill_id: int) -> dict[str, Any]:
        return {"type": "queue.changed", "skill_id": skill_id}

    started = loop.time()
    for n in range(20):  # 20 claims in one queue, one after the other
        handover.put(layer, [(f"case.{n}", {"type": "case.status", "reference": f"M{n}", "status": "active"}),
                             ("queue.7", changed(7)), ("dashboard", changed(7))])
        await asyncio.sleep(0)
    handover.put(layer, [("queue.8", changed(8)), ("dashboard", changed(8))])  # another queue
    await asyncio.sleep(0)
    await events.background_settled()

    sent = [(at - started, group, payload) for at, group, payload in layer.sent]
    # Every other event goes, at once.
    rooms = sorted(group for _at, group, _p in sent if group.startswith("case."))
    assert rooms == sorted(f"case.{n}" for n in range(20))
    # Each group hears each queue's change twice: at once, then once for all that came meanwhile
    # when the time is up.
    for group, skill_id in (("queue.7", 7), ("dashboard", 7), ("queue.8", 8), ("dashboard", 8)):
        times = [at for at, g, payload in sent if g == group and payload == changed(skill_id)]
        expected = 1 if skill_id == 8 else 2
        assert len(times) == expected, (group, skill_id, times)
        if expected == 2:
            assert times[1] - times[0] >= events.REFRESH_EVERY_SECONDS - 0.01

    # Once the time is up, the next change goes at once again.
    layer.sent.clear()
    await asyncio.sleep(events.REFRESH_EVERY_SECONDS)
    handover.put(layer, [("queue.7", changed(7))])
    await asyncio.sleep(0)
    await events.background_settled()
    assert [(group, payload) for _at, group, payload in layer.sent] == [("queue.7", changed(7))]

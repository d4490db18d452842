"""The live layer as production runs it: two daphnes with `DEBUG` off on the Redis channel layer
(our own redis-server, restartable) and the test database (PostgreSQL, reached through a proxy
that can cut it off; the services pass). Idle sockets, a Redis restart and a database outage in the
middle of a conversation: every acknowledged message reaches every tab exactly once, in each
sender's typing order, and nobody stays deaf for long after recovery.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from knox.models import AuthToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from consult import services
from consult.models import Case, Message, Professional, User
from tests.cluster import (
    HOST,
    DaphneProcess,
    RedisServer,
    Tab,
    TcpProxy,
    assert_held_exactly_once,
    production_env,
    proxied_database_url,
    until,
)
from tests.live import database_url

IDLE_SECONDS = 60  # longer than every timeout on the way (Redis client 5 s, layer, daphne, proxies)

# The production shape is PostgreSQL's: the minute-long idle run and the outage run are the
# services pass's (a minute and a half the embedded pass would spend again on SQLite, where only
# Redis can fail, to learn nothing the services pass does not).
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the production shape runs on PostgreSQL"
)


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    stops: list[Callable[[], None]] = []
    try:
        yield stops
    finally:
        for stop in reversed(stops):
            stop()


def cookie_for(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def start_cluster(
    tmp_path: Path, cleanup: list[Callable[[], None]], database: str, count: int = 2
) -> tuple[RedisServer, list[DaphneProcess]]:
    redis = RedisServer(tmp_path)
    cleanup.append(redis.stop)
    redis.start()
    daphnes = [
        DaphneProcess(production_env(redis.url, database), tmp_path, f"daphne-{n}").start() for n in range(count)
    ]
    for daphne in daphnes:
        cleanup.append(daphne.stop)
    for daphne in daphnes:
        daphne.wait()
    return redis, daphnes


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@needs_postgresql
def test_idle_sockets_on_the_redis_layer_stay_open_and_still_hear_the_room(
    alice: User, doctor: Professional, case: Case, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    services.case_accept(case=case, professional=doctor)
    _redis, daphnes = start_cluster(tmp_path, cleanup, database_url())
    path = f"/ws/cases/{case.reference}/"
    tokens = [AuthToken.objects.create(user)[1] for user in (alice, alice, doctor.user)]
    cookie = cookie_for(alice)

    async def scenario() -> dict[str, Any]:
        sockets = [
            await connect(
                daphnes[n % 2].ws_url(path), additional_headers={"Authorization": f"Token {token}"},
                ping_interval=None, proxy=None, open_timeout=10,
            )
            for n, token in enumerate(tokens)
        ]
        sockets.append(
            await connect(
                daphnes[1].ws_url(path), origin=daphnes[1].origin,  # type: ignore[arg-type]
                additional_headers={"Cookie": cookie}, ping_interval=None, proxy=None,
            )
        )
        closed: list[tuple[int, int | None]] = []

        async def drain(n: int, ws: Any) -> list[dict[str, Any]]:
            frames: list[dict[str, Any]] = []
            try:
                async for raw in ws:
                    frames.append(json.loads(raw))
            except ConnectionClosed as error:
                closed.append((n, error.rcvd.code if error.rcvd else None))
            return frames

        readers = [asyncio.create_task(drain(n, ws)) for n, ws in enumerate(sockets)]
        await asyncio.sleep(IDLE_SECONDS)  # nobody says anything, not even ping
        await sockets[2].send(json.dumps({"type": "message", "client_id": "after-idle", "body": "还在吗？"}))
        await asyncio.sleep(2)
        for ws in sockets:
            await ws.close()
        frames = await asyncio.gather(*readers)
        return {"closed": closed, "frames": frames}

    result = asyncio.run(scenario())
    assert result["closed"] == [], result["closed"]
    for frames in result["frames"]:
        bodies = [f["message"]["body"] for f in frames if f["type"] == "message"]
        assert bodies == ["还在吗？"], frames
    for daphne in daphnes:
        assert "Traceback" not in daphne.log.read_text(errors="replace"), daphne.log.read_text()[-3000:]


# --- a conversation through a Redis restart and a database outage ---------------------------

MESSAGES_PER_TAB = 40
TYPING_INTERVAL = 0.6  # seconds between two messages a tab types (the server allows 20 per 10 s)
DEAF_LIMIT = 10.0  # seconds after recovery by which every tab holds every acknowledged message


def deadline_for(acked_at: float, outages: list[tuple[float, float]]) -> float:
    """When every tab must hold a message acknowledged at `acked_at`: 10 s later, or 10 s after
    the end of an outage it was caught in (a broadcast lost to it comes back by resync)."""
    for start, end in outages:
        if start - 1.0 <= acked_at <= end:
            return end + DEAF_LIMIT
    return acked_at + DEAF_LIMIT


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@needs_postgresql
def test_a_conversation_survives_a_redis_restart_and_a_database_outage_on_two_daphnes(
    alice: User, doctor: Professional, case: Case, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    services.case_accept(case=case, professional=doctor)
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or HOST, int(db["PORT"] or 5432))
    cleanup.append(proxy.close)
    redis, daphnes = start_cluster(tmp_path, cleanup, proxied_database_url(proxy))
    cookies = {user.pk: cookie_for(user) for user in (alice, doctor.user)}
    path = f"/ws/cases/{case.reference}/"
    urls = [daphne.ws_url(path) for daphne in daphnes]
    tabs = [
        Tab(
            name=f"{who}-{n}", urls=urls[n:] + urls[:n], origin=daphnes[n].origin,
            headers={"Cookie": cookies[user.pk]}, typing_interval=TYPING_INTERVAL,
            script=[(f"{who}-{n}-{i}", f"{who} {n} 第{i}句") for i in range(MESSAGES_PER_TAB)],
        )
        for who, user in (("resident", alice), ("doctor", doctor.user))
        for n in (0, 1)
    ]
    outages: list[tuple[float, float]] = []

    async def scenario() -> dict[str, Any]:
        deadline = time.monotonic() + 120
        tasks = [asyncio.create_task(tab.run(deadline)) for tab in tabs]
        try:
            await until(lambda: sum(len(t.acked) for t in tabs) >= 20, "20 acks", deadline, tabs)
            stopped = time.monotonic()
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(2)
            await asyncio.to_thread(redis.start)
            outages.append((stopped, time.monotonic()))
            await until(lambda: sum(len(t.acked) for t in tabs) >= 60, "60 acks", deadline, tabs)
            cut = time.monotonic()
            await asyncio.to_thread(proxy.cut)
            await asyncio.sleep(10)
            await asyncio.to_thread(proxy.restore)
            outages.append((cut, time.monotonic()))
            await until(lambda: all(len(t.acked) == MESSAGES_PER_TAB for t in tabs), "every ack", deadline, tabs)
            final = max(seq for t in tabs for seq in t.acked.values())
            for tab in tabs:
                tab.stop_at_seq = final
            await until(lambda: all(t.done for t in tabs), "every tab to catch up", deadline, tabs)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {"final": final}

    try:
        asyncio.run(scenario())
    except AssertionError as error:
        logs = "\n".join(f"--- {d.log.name}\n{d.log.read_text(errors='replace')[-3000:]}" for d in daphnes)
        raise AssertionError(f"{error}\n{logs}") from None

    stored = list(
        Message.objects.filter(case=case).order_by("seq").values("seq", "kind", "sender_id", "client_id", "body")
    )
    assert_held_exactly_once(tabs, stored)
    acked_at = {client_id: (tab.acked[client_id], at) for tab in tabs for client_id, at in tab.acked_at.items()}
    late = [
        (tab.name, client_id, round(tab.received_at[seq] - deadline_for(at, outages), 1))
        for tab in tabs
        for client_id, (seq, at) in acked_at.items()
        if tab.received_at[seq] > deadline_for(at, outages)
    ]
    assert late == [], f"deaf for more than {DEAF_LIMIT} s after recovery: {late[:10]}"
    print("fault test:", [tab.state() for tab in tabs])


@pytest.mark.django_db(transaction=True)
def test_a_socket_opened_while_the_database_is_down_is_refused_cleanly(
    alice: User, case: Case, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    """Refused at the handshake (clients back off and come again), with one line in the log, not a
    traceback per attempt."""
    from websockets.exceptions import InvalidStatus

    from tests.cluster import spare_port

    token = AuthToken.objects.create(alice)[1]
    cookie = cookie_for(alice)
    nobody = f"postgres://postgres@{HOST}:{spare_port()}/consult"  # a port where nothing listens
    _redis, (daphne,) = start_cluster(tmp_path, cleanup, nobody, count=1)
    path = f"/ws/cases/{case.reference}/"

    async def attempts() -> list[int]:
        statuses = []
        for headers, origin in (({"Authorization": f"Token {token}"}, None), ({"Cookie": cookie}, daphne.origin)):
            for _ in range(3):
                try:
                    ws = await connect(daphne.ws_url(path), origin=origin, additional_headers=headers,  # type: ignore[arg-type]
                                       proxy=None, open_timeout=10)
                except InvalidStatus as refused:
                    statuses.append(refused.response.status_code)
                else:
                    await ws.close()
                    statuses.append(101)
        return statuses

    assert asyncio.run(attempts()) == [403] * 6
    log = daphne.log.read_text(errors="replace")
    assert log.count("refused: the database is unavailable") == 6
    assert "Traceback" not in log


@pytest.mark.django_db(transaction=True)
def test_sigterm_closes_every_socket_as_a_restart_cleans_up_and_exits(
    alice: User, doctor: Professional, case: Case, tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    from realtime.models import Connection

    services.case_accept(case=case, professional=doctor)
    _redis, (daphne,) = start_cluster(tmp_path, cleanup, database_url(), count=1)
    tokens = [AuthToken.objects.create(user)[1] for user in (alice, alice, doctor.user)]
    path = f"/ws/cases/{case.reference}/"

    async def scenario() -> tuple[list[int | None], int | None, float]:
        sockets = [
            await connect(daphne.ws_url(path), additional_headers={"Authorization": f"Token {token}"}, proxy=None)
            for token in tokens
        ]
        await sockets[0].send(json.dumps({"type": "message", "client_id": "last-words", "body": "再见"}))
        await asyncio.sleep(0.5)
        code, seconds = await asyncio.to_thread(daphne.terminate)
        closes = []
        for ws in sockets:
            try:
                async for _raw in ws:
                    pass
            except ConnectionClosed:
                pass
            closes.append(ws.close_code)
        return closes, code, seconds

    closes, code, seconds = asyncio.run(scenario())
    assert closes == [4503, 4503, 4503]  # "server restarting": clients reconnect at once, maybe elsewhere
    assert code == 0, daphne.log.read_text()[-3000:]
    assert seconds < 12
    assert not Connection.objects.filter(case=case).exists()  # each consumer cleaned up after itself
    assert Message.objects.filter(case=case, client_id="last-words").count() == 1
    assert "Traceback" not in daphne.log.read_text(errors="replace")


def test_a_handshake_that_waits_longer_than_daphnes_default_for_the_application_is_served(tmp_path: Path) -> None:
    """In a reconnect storm a handshake waits its turn for the database: served late, not dropped
    at daphne's default 5 s (a client that then retries is a connect done for nothing)."""
    daphne = DaphneProcess({**os.environ, "SLOW_ACCEPT_SECONDS": "7"}, tmp_path, "slow")
    daphne.asgi = "tests.realtime.slow_asgi:application"
    daphne.start().wait()
    try:

        async def handshake() -> float:
            started = time.monotonic()
            async with connect(daphne.ws_url("/slow/"), open_timeout=20, proxy=None):
                return time.monotonic() - started

        assert asyncio.run(handshake()) >= 7
    finally:
        daphne.stop()

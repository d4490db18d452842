"""Two real daphne processes sharing a Redis channel layer and the test database: a resident on one
and a doctor on the other exchange 200 messages while Redis is stopped and started again. After
reconnecting and resyncing, every tab holds every committed message exactly once, in order.

Each of them has two tabs open (50 messages a tab): the server allows 20 messages per 10 seconds
on a socket, and the clients keep to it, so two tabs keep the test well under a minute.

The test starts its own redis-server on a spare loopback port (so it runs in both passes and
touches no shared Redis). A server that cannot start fails the test; it never skips.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from consult import services
from consult.models import Case, Message, MessageKind, Professional, User

REDIS_SERVER = "/usr/bin/redis-server"
DAPHNE = str(Path(sys.executable).with_name("daphne"))
HOST = "127.0.0.1"

MESSAGES_PER_TAB = 50  # two tabs each for the resident and the doctor: 200 messages
# The server refuses a 21st message within 10 seconds on one socket; stay just under it.
WINDOW_MESSAGES, WINDOW_SECONDS = 20, 10.5
START_TIMEOUT = 8.0  # per server
EXCHANGE_TIMEOUT = 40.0  # everything from the first message to the last resync


def spare_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{tail(log)}", pytrace=False)
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {HOST}:{port} within {timeout} s:\n{tail(log)}", pytrace=False)


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=3)


class RedisServer:
    """Our own redis-server: no persistence, loopback only, restartable on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = spare_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        if not os.access(REDIS_SERVER, os.X_OK):
            pytest.fail(f"{REDIS_SERVER} is not installed", pytrace=False)
        self.starts += 1
        log = self.directory / f"redis-{self.starts}.log"
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(self.port, self.process, log, "redis-server", START_TIMEOUT)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def database_url() -> str:
    """The database this test uses, for the servers it starts."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        where = f"{db['HOST'] or HOST}:{db['PORT'] or 5432}"
        return f"postgres://{quote(db['USER'], safe='')}{password}@{where}/{db['NAME']}"
    pytest.fail(f"no URL for a {connection.vendor} database", pytrace=False)


def start_daphne(port: int, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consult.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "WARNING",
    }
    if not os.access(DAPHNE, os.X_OK):
        pytest.fail(f"{DAPHNE} is not installed", pytrace=False)
    return subprocess.Popen(
        [DAPHNE, "-b", HOST, "-p", str(port), "consult.asgi:application"],
        cwd=settings.BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


# --- a client that behaves like static/js/room.js ------------------------------------------


@dataclass
class Tab:
    """One browser tab in the room: holds messages by number, knows the highest number up to
    which it holds everything, says hello with it on every (re)connect and whenever it sees a
    gap, and sends again every message not yet acknowledged."""

    name: str
    url: str
    origin: str
    cookie: str
    script: list[tuple[str, str]]  # (client id, body) it will send, in order
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    contiguous: int = 0
    next_new: int = 0
    unacked: dict[str, str] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    connects: int = 0
    resent: int = 0
    duplicates: int = 0
    gaps: int = 0
    failures: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    final_seq: int | None = None
    done: bool = False

    @property
    def all_acked(self) -> bool:
        return self.next_new == len(self.script) and not self.unacked

    def take(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq in self.held:
            self.duplicates += 1
            return
        self.held[seq] = message
        while self.contiguous + 1 in self.held:
            self.contiguous += 1

    def to_send(self, sent_here: set[str]) -> str | None:
        for client_id in self.unacked:
            if client_id not in sent_here:
                self.resent += 1
                return client_id
        if self.next_new < len(self.script):
            client_id, body = self.script[self.next_new]
            self.next_new += 1
            self.unacked[client_id] = body
            return client_id
        return None

    async def run(self, deadline: float) -> None:
        delay = 0.05
        while not self.done and time.monotonic() < deadline:
            try:
                async with connect(
                    self.url, origin=Origin(self.origin), additional_headers={"Cookie": self.cookie},
                    open_timeout=2, close_timeout=0.5, ping_interval=None, proxy=None,
                ) as ws:
                    self.connects += 1
                    delay = 0.05
                    await self.session(ws, deadline)
            except (OSError, TimeoutError, WebSocketException) as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            if not self.done:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.4)

    async def session(self, ws: ClientConnection, deadline: float) -> None:
        sent_at: deque[float] = deque()
        sent_here: set[str] = set()
        synced = resyncing = final_hello = False

        async def hello() -> None:
            nonlocal resyncing
            resyncing = True
            await ws.send(json.dumps({"type": "hello", "last_seq": self.contiguous}))

        await hello()
        while time.monotonic() < deadline:
            now = time.monotonic()
            while sent_at and now - sent_at[0] > WINDOW_SECONDS:
                sent_at.popleft()
            while synced and len(sent_at) < WINDOW_MESSAGES:
                client_id = self.to_send(sent_here)
                if client_id is None:
                    break
                sent_here.add(client_id)
                sent_at.append(now)
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "body": self.unacked[client_id]}))
            if self.final_seq is not None and synced and not resyncing:
                if not final_hello:
                    final_hello = True
                    await hello()
                elif self.contiguous >= self.final_seq:
                    self.done = True
                    return
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.1))
            except TimeoutError:
                continue
            if frame["type"] == "message":
                self.take(frame["message"])
                if max(self.held) > self.contiguous and not resyncing:
                    self.gaps += 1  # a broadcast was lost (or overtaken): ask for what is missing
                    await hello()
            elif frame["type"] == "synced":
                synced, resyncing = True, False
            elif frame["type"] == "ack":
                self.acked[frame["client_id"]] = frame["seq"]
                self.unacked.pop(frame["client_id"], None)
            elif frame["type"] == "error" and frame.get("code") == "rate_limited":
                sent_here.discard(frame["client_id"])
            elif frame["type"] in ("error", "closed"):
                self.refused.append(frame)


async def exchange(tabs: list[Tab], redis: RedisServer) -> dict[str, Any]:
    deadline = time.monotonic() + EXCHANGE_TIMEOUT
    started = time.monotonic()
    tasks = [asyncio.create_task(tab.run(deadline)) for tab in tabs]
    stats: dict[str, Any] = {}

    async def until(condition: Callable[[], bool], what: str) -> None:
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {[tab_state(t) for t in tabs]}")
            if any(task.done() and not tab.done for task, tab in zip(tasks, tabs, strict=True)):
                raise AssertionError(f"a client stopped early: {[tab_state(t) for t in tabs]}")
            await asyncio.sleep(0.02)

    try:
        # Redis goes away in the middle, while messages are in flight.
        await until(lambda: sum(len(t.acked) for t in tabs) >= 50, "the first 50 acks")
        stats["redis_stopped_at"] = round(time.monotonic() - started, 1)
        await asyncio.to_thread(redis.stop)
        stats["acked_when_redis_stopped"] = sum(len(t.acked) for t in tabs)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis.start)
        await until(lambda: all(t.all_acked for t in tabs), "every message to be acknowledged")
        final_seq = max(seq for t in tabs for seq in t.acked.values())
        for tab in tabs:
            tab.final_seq = final_seq
        await until(lambda: all(t.done for t in tabs), "every tab to resync")
        stats["seconds"] = round(time.monotonic() - started, 1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    stats["final_seq"] = final_seq
    return stats


def tab_state(tab: Tab) -> dict[str, Any]:
    return {
        "tab": tab.name, "connects": tab.connects, "sent": tab.next_new, "acked": len(tab.acked),
        "unacked": len(tab.unacked), "held": len(tab.held), "contiguous": tab.contiguous,
        "gaps": tab.gaps, "resent": tab.resent, "duplicates": tab.duplicates, "refused": tab.refused[:3],
        "failures": tab.failures[-3:],
    }


# --- the test --------------------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[Callable[[], None]]]:
    """Stop functions for every process the test starts; all are called, whatever happens."""
    stops: list[Callable[[], None]] = []
    try:
        yield stops
    finally:
        for stop_one in stops:
            stop_one()


@pytest.mark.django_db(transaction=True)
def test_it_delivers_every_message_exactly_once_in_order_across_two_daphnes_and_a_redis_restart(
    alice: User, doctor: Professional, case: Case, tmp_path: Path, processes: list[Callable[[], None]]
) -> None:
    services.case_accept(case=case, professional=doctor)
    cookies = {}
    for user in (alice, doctor.user):
        client = Client()
        client.force_login(user)
        cookies[user.pk] = f"sessionid={client.cookies['sessionid'].value}"

    redis = RedisServer(tmp_path)
    processes.append(redis.stop)
    redis.start()
    ports = [spare_port(), spare_port()]
    daphnes = []
    for n, port in enumerate(ports):
        log = tmp_path / f"daphne-{n}.log"
        process = start_daphne(port, redis.url, log)
        processes.append(functools.partial(stop, process))
        daphnes.append((process, log))
    for (process, log), port in zip(daphnes, ports, strict=True):
        wait_for_port(port, process, log, f"daphne on port {port}", START_TIMEOUT)

    def tabs_for(user: User, who: str, port: int) -> list[Tab]:
        return [
            Tab(
                name=f"{who}-{t}", url=f"ws://{HOST}:{port}/ws/cases/{case.reference}/",
                origin=f"http://{HOST}:{port}", cookie=cookies[user.pk],
                script=[(f"{who}-{t}-{n}", f"{who} tab {t} says {n}") for n in range(MESSAGES_PER_TAB)],
            )
            for t in (1, 2)
        ]

    tabs = [*tabs_for(alice, "resident", ports[0]), *tabs_for(doctor.user, "doctor", ports[1])]
    try:
        stats = asyncio.run(exchange(tabs, redis))
    except AssertionError as error:
        logs = "\n".join(f"--- {log.name}\n{tail(log)}" for _process, log in daphnes)
        raise AssertionError(f"{error}\n{logs}") from None

    stored = list(
        Message.objects.filter(case=case).order_by("seq").values("seq", "kind", "sender_id", "client_id", "body")
    )
    assert [m["seq"] for m in stored] == list(range(1, stats["final_seq"] + 1))
    texts = [m for m in stored if m["kind"] == MessageKind.TEXT]
    # Each message stored once, however many times it was sent.
    expected = sorted(client_id for tab in tabs for client_id, _body in tab.script)
    assert sorted(str(m["client_id"]) for m in texts) == expected
    assert len(texts) == 200
    senders = {tab.name: (alice.pk if tab.name.startswith("resident") else doctor.user.pk) for tab in tabs}
    for tab in tabs:
        assert tab.refused == [], tab_state(tab)
        # Every committed message, exactly once, in order, as the database has it.
        held = [
            {"seq": m["seq"], "kind": m["kind"], "sender_id": m["sender_id"], "client_id": m["client_id"] or None,
             "body": m["body"]}
            for m in (tab.held[seq] for seq in sorted(tab.held))
        ]
        assert held == stored, tab_state(tab)
        assert tab.connects >= 2, f"{tab.name} never had to reconnect: {tab_state(tab)}"
        for client_id, seq in tab.acked.items():
            assert tab.held[seq]["client_id"] == client_id
            assert tab.held[seq]["sender_id"] == senders[tab.name]
    assert redis.starts == 2, stats

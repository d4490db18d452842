"""The production shape on one machine, for tests and benchmarks: our own redis-server (restartable
on the same port), daphne processes with the settings production uses (`DEBUG` off, the Redis
layer, the test database), a TCP proxy that can cut the database off like a server that stopped,
and a chat client that behaves like `static/js/room.js`.

Nothing here touches the machine's shared services: the Redis is our own, and the database is
reached through the proxy, so "PostgreSQL stopped" stops only what the daphnes see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from consult.management.commands.serve import DAPHNE_OPTIONS, listen_options
from tests.live import DAPHNE, ROOT, database_url

HOST = "127.0.0.1"
REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 20.0


class HarnessError(AssertionError):
    """A part of the cluster could not start: the test fails (it never skips)."""


def spare_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HarnessError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise HarnessError(f"{what} did not listen on {HOST}:{port} within {timeout} s:\n{tail(log)}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


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
            raise HarnessError(f"{REDIS_SERVER} is not installed")
        self.starts += 1
        log = self.directory / f"redis-{self.port}-{self.starts}.log"
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(self.port, self.process, log, "redis-server", START_TIMEOUT)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class TcpProxy:
    """A loopback TCP proxy (in a thread of its own) in front of the database. `cut()` drops every
    connection and refuses new ones, as a stopped server does; `restore()` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = spare_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.restore()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.writers.difference_update((writer, up_writer))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, HOST, self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.writers.clear()

    def restore(self) -> None:
        if self.server is None:
            self._call(self._start())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def proxied_database_url(proxy: TcpProxy) -> str:
    parts = urlsplit(database_url())
    netloc = parts.netloc.rsplit("@", 1)
    auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{auth}{HOST}:{proxy.port}"))


def production_env(redis_url: str, database: str, **extra: str) -> dict[str, str]:
    """The variables a production daphne runs with (but HTTPS, which a loopback test cannot have)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consult.settings",
        "DEBUG": "false",
        # The test process's key: sessions it creates must be readable by the servers.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "DB_CONN_MAX_AGE": "60",  # persistent connections, as production keeps them
        # Every process here is on this one machine, uploads on its disk: honestly one box.
        "SINGLE_MACHINE": "true",
        **extra,
    }
    env.pop("CONSULT_REQUIRE_SERVICES", None)
    return env


class DaphneProcess:
    """One daphne serving the project with the environment it is given."""

    def __init__(self, env: dict[str, str], directory: Path, name: str) -> None:
        self.port = spare_port()
        self.env = env
        self.log = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.asgi = "consult.asgi:application"
        self.cwd = ROOT  # the checkout it serves

    def start(self) -> DaphneProcess:
        if not os.access(DAPHNE, os.X_OK):
            raise HarnessError(f"{DAPHNE} is not installed")
        self.process = subprocess.Popen(
            [str(DAPHNE), *listen_options(HOST, self.port), *DAPHNE_OPTIONS, self.asgi],
            cwd=self.cwd, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait(self) -> DaphneProcess:
        assert self.process is not None
        wait_for_port(self.port, self.process, self.log, f"daphne on port {self.port}", START_TIMEOUT)
        return self

    def terminate(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM; returns the exit code (None: it had to be killed) and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                return None, time.monotonic() - started
        return self.process.returncode, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def ws_url(self, path: str) -> str:
        return f"ws://{HOST}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"


# --- a chat client that behaves like static/js/room.js ----------------------------------------


@dataclass
class Tab:
    """One open case page. Like room.js it holds messages by number and knows the highest number
    up to which it holds everything; says hello with it on every (re)connect, when the server asks
    it to resync, and when a message or an acknowledgement shows a gap; keeps its outbox in typing
    order, sending the oldest unacknowledged message and the next only once that one is
    acknowledged; sends again after a retryable error; backs off with jitter between reconnects."""

    name: str
    urls: list[str]  # daphnes to connect to, in turn (a load balancer's choice)
    origin: str
    headers: dict[str, str]
    script: list[tuple[str, str]] = field(default_factory=list)  # (client id, body), typed in order
    typing_interval: float = 0.0  # seconds between two typed messages
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    received_at: dict[int, float] = field(default_factory=dict)  # seq -> when it reached this tab
    contiguous: int = 0
    typed: int = 0  # how much of the script has been typed (into the outbox)
    outbox: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)
    connects: int = 0
    duplicates: int = 0
    resyncs: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop_at_seq: int | None = None
    done: bool = False
    connected: bool = False
    tls: Any = None  # an ssl.SSLContext for wss:// URLs (a balancer with its own certificate)

    def take(self, message: dict[str, Any], now: float) -> None:
        seq = message["seq"]
        if seq in self.held:
            self.duplicates += 1
            return
        self.held[seq] = message
        self.received_at[seq] = now
        while self.contiguous + 1 in self.held:
            self.contiguous += 1

    async def run(self, deadline: float) -> None:
        attempt = 0
        started = time.monotonic()
        next_type = started
        while not self.done and time.monotonic() < deadline:
            url = self.urls[(self.connects + attempt) % len(self.urls)]
            try:
                async with connect(
                    url, origin=self.origin, additional_headers=self.headers,  # type: ignore[arg-type]
                    open_timeout=10, close_timeout=1, ping_interval=None, proxy=None,
                    **({"ssl": self.tls} if self.tls is not None else {}),
                ) as ws:
                    self.connects += 1
                    attempt = 0
                    self.connected = True
                    next_type = await self.session(ws, deadline, next_type)
            except (OSError, TimeoutError, WebSocketException) as error:
                if isinstance(error, ConnectionClosed):
                    self.closes.append(error.rcvd.code if error.rcvd else None)
                else:
                    self.failures.append(f"{type(error).__name__}: {error}")
            self.connected = False
            if not self.done:
                attempt += 1
                # room.js: full jitter under a cap that doubles (here from 0.25 s up to 2 s).
                await asyncio.sleep(random_delay(min(2.0, 0.25 * 2**attempt)))

    async def session(self, ws: ClientConnection, deadline: float, next_type: float) -> float:
        resyncing = synced = False
        in_flight: str | None = None
        retry_at = 0.0
        hello_at = 0.0
        self.debug = lambda: {"in_flight": in_flight, "resyncing": resyncing, "synced": synced, "retry_at": retry_at}

        async def hello() -> None:
            nonlocal resyncing
            resyncing = True
            self.resyncs += 1
            await ws.send(json.dumps({"type": "hello", "last_seq": self.contiguous}))

        await hello()
        while time.monotonic() < deadline:
            now = time.monotonic()
            if hello_at and now >= hello_at:
                hello_at = 0.0
                await hello()
            while self.typed < len(self.script) and now >= next_type:
                self.outbox.append(self.script[self.typed][0])
                self.typed += 1
                next_type += self.typing_interval
            if synced and not resyncing and in_flight is None and self.outbox and now >= retry_at:
                in_flight = self.outbox[0]
                body = self._bodies[in_flight]
                await ws.send(json.dumps({"type": "message", "client_id": in_flight, "body": body}))
            if self.stop_at_seq is not None and synced and not resyncing and not self.outbox:
                if self.contiguous >= self.stop_at_seq:
                    self.done = True
                    return next_type
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.05))
            except TimeoutError:
                continue
            now = time.monotonic()
            kind = frame.get("type")
            if kind == "message":
                self.take(frame["message"], now)
                if self.held and max(self.held) > self.contiguous and not resyncing:
                    await hello()
            elif kind == "synced":
                synced, resyncing = True, False
                if frame.get("more"):
                    await hello()
            elif kind == "resync":
                if not resyncing:
                    await hello()
            elif kind == "ack":
                client_id = frame["client_id"]
                self.acked.setdefault(client_id, frame["seq"])
                self.acked_at.setdefault(client_id, now)
                if client_id in self.outbox:
                    self.outbox.remove(client_id)
                if in_flight == client_id:
                    in_flight = None
                # Our own message is numbered past what we hold: someone else's were missed.
                if frame["seq"] > self.contiguous + 1 and not resyncing:
                    await hello()
            elif kind == "error":
                self.errors.append(frame)
                if frame.get("answers") == "hello" and frame.get("retry"):
                    hello_at = now + float(frame.get("retry_after", 1.0))
                if frame.get("client_id") and frame.get("client_id") == in_flight:
                    in_flight = None
                    if frame.get("retry"):
                        retry_at = now + float(frame.get("retry_after", 1.0))
                    else:
                        self.outbox.remove(frame["client_id"])
        return next_type

    def __post_init__(self) -> None:
        self._bodies = dict(self.script)

    def state(self) -> dict[str, Any]:
        return {
            "tab": self.name, "connects": self.connects, "typed": self.typed, "acked": len(self.acked),
            "outbox": len(self.outbox), "held": len(self.held), "contiguous": self.contiguous,
            "resyncs": self.resyncs, "duplicates": self.duplicates, "errors": self.errors[-3:],
            "closes": self.closes[-5:], "failures": self.failures[-3:],
            **(self.debug() if hasattr(self, "debug") else {}),
        }


def random_delay(cap: float) -> float:
    import random

    return random.random() * cap


async def until(condition: Callable[[], bool], what: str, deadline: float, tabs: list[Tab]) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {[t.state() for t in tabs]}")
        await asyncio.sleep(0.02)


def assert_held_exactly_once(tabs: list[Tab], stored: Sequence[Mapping[str, Any]]) -> None:
    """Every typed message stored once, each tab's in its typing order, none refused for good, and
    every tab holding exactly what is stored (`stored`: the case's messages by seq, as rows with
    seq, kind, sender_id, client_id, body)."""
    from consult.models import MessageKind

    texts = [m for m in stored if m["kind"] == MessageKind.TEXT]
    typed = [client_id for tab in tabs for client_id, _body in tab.script]
    assert sorted(str(m["client_id"]) for m in texts) == sorted(typed)  # each stored once
    for tab in tabs:
        mine = [m["client_id"] for m in texts if str(m["client_id"]).startswith(tab.name + "-")]
        assert mine == [client_id for client_id, _body in tab.script], f"{tab.name}: not in typing order"
        assert [e for e in tab.errors if not e.get("retry")] == [], tab.state()
        held = [
            {"seq": m["seq"], "kind": m["kind"], "sender_id": m["sender_id"], "client_id": m["client_id"] or None,
             "body": m["body"]}
            for m in (tab.held[seq] for seq in sorted(tab.held))
        ]
        assert held == stored, tab.state()

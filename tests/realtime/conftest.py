"""Sockets for the cast: a `WebsocketCommunicator` against the real ASGI stack (origin check,
session cookie, auth) for any user, and helpers to read the frames a socket receives.

The channel layer is whatever the settings say: in-memory in the embedded pass, Redis when
REDIS_URL is set. Nothing global is flushed; every test makes its own cases (so its own groups).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import Client

from consult.asgi import application
from consult.models import User
from realtime.events import background_settled

TIMEOUT = 2  # seconds: every receive is bounded
QUIET = 0.3  # seconds a socket must stay silent to count as "received nothing"
ORIGIN = "http://127.0.0.1"

Connect = Callable[..., Awaitable["Socket"]]


def session_cookie(user: User | None) -> str:
    """A real session for `user` (as after logging in), as a Cookie header value."""
    if user is None:
        return ""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


class Socket(WebsocketCommunicator):
    """A communicator that remembers how its handshake went."""

    accepted = False
    close_code: int | None = None


def socket_for(path: str, cookie: str = "", origin: str | None = ORIGIN) -> Socket:
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return Socket(application, path, headers=headers)


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Any:
    """A new layer object per test, so nothing (queues, connections) outlives the test's event
    loop. This drops only this process's layer object; nothing is flushed from Redis."""
    channel_layers.backends.pop("default", None)
    yield
    channel_layers.backends.pop("default", None)


@pytest_asyncio.fixture
async def connect() -> AsyncIterator[Connect]:
    """`await connect(user, path)` opens a socket as `user` (None: anonymous) and returns it,
    accepted or not (`comm.accepted`, `comm.close_code`). Every socket is disconnected after
    the test."""
    opened: list[Socket] = []

    async def open_socket(
        user: User | None, path: str, *, origin: str | None = ORIGIN, cookie: str | None = None
    ) -> Socket:
        if cookie is None:
            cookie = await database_sync_to_async(session_cookie)(user)
        comm = socket_for(path, cookie, origin)
        opened.append(comm)
        comm.accepted, detail = await comm.connect(timeout=TIMEOUT)
        comm.close_code = None if comm.accepted else detail
        return comm

    yield open_socket
    for comm in opened:
        try:
            await comm.disconnect(timeout=TIMEOUT)
        # Also cancelled: a receive that timed out cancels the socket's application (asgiref).
        except (Exception, asyncio.CancelledError):  # noqa: S110 - already closed by the server, or crashed (reported by the test)
            pass
    # Work the sockets left running (the away notice of each message, a job run inline in tests)
    # ends before the test's data is flushed: a flush waiting on its locks while it waits on the
    # flush's is a deadlock.
    await background_settled()


def room_path(reference: str) -> str:
    return f"/ws/cases/{reference}/"


QUEUE_PATH = "/ws/queue/"


async def receive_until(comm: WebsocketCommunicator, frame_type: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (presence, place...)."""
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        if frame["type"] == frame_type:
            return frame


async def frames_until_quiet(comm: WebsocketCommunicator, quiet: float = QUIET) -> list[dict[str, Any]]:
    """Every frame received until the socket has been silent for `quiet` seconds."""
    frames: list[dict[str, Any]] = []
    for _ in range(500):
        if await comm.receive_nothing(timeout=quiet):
            return frames
        frames.append(await comm.receive_json_from(timeout=TIMEOUT))
    raise AssertionError(f"the socket never went quiet: {frames[-5:]}")


def of_type(frames: list[dict[str, Any]], frame_type: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == frame_type]


async def hello(comm: WebsocketCommunicator, last_seq: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send hello; return the replayed messages and the `synced` frame."""
    await comm.send_json_to({"type": "hello", "last_seq": last_seq})
    replayed: list[dict[str, Any]] = []
    for _ in range(1000):
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "synced":
            return replayed, frame
        if frame["type"] == "message":
            replayed.append(frame["message"])
    raise AssertionError("no synced frame")


async def say(comm: WebsocketCommunicator, body: str, client_id: str) -> dict[str, Any]:
    """Post a chat message and return its ack (failing on an error frame)."""
    await comm.send_json_to({"type": "message", "client_id": client_id, "body": body})
    while True:
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "error":
            raise AssertionError(f"message refused: {frame}")
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return frame


async def closed_with(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> int:
    """Skip frames until the server closes the socket; return the close code."""
    while True:
        output = await comm.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))

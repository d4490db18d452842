"""An ASGI app that takes SLOW_ACCEPT_SECONDS (default 7) to accept a websocket: a process busy
with a reconnect storm, as the handshake sees it. Served by daphne in test_production_shape.py."""

from __future__ import annotations

import asyncio
import os
from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await asyncio.sleep(float(os.environ.get("SLOW_ACCEPT_SECONDS", "7")))
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass

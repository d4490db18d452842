from __future__ import annotations

from typing import Any

# Consumers (case room, queue feed) are routed here by the real-time work.
websocket_urlpatterns: list[Any] = []

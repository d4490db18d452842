"""The baseline for the chat benchmark: a bare Channels consumer that only broadcasts. It joins a
room's group, and for every frame sends it to the group and acknowledges it: no authentication, no
database, no checks. Served by daphne on the same channel layer (settings) as the project."""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class BareConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.room = "bare." + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content.get("type") != "message":
            return
        await self.channel_layer.group_send(self.room, {"type": "bare.message", "message": content})
        await self.send_json({"type": "ack", "client_id": content.get("client_id"), "seq": 0})

    async def bare_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": event["message"]})


application = ProtocolTypeRouter({"websocket": URLRouter([path("bare/<str:room>/", BareConsumer.as_asgi())])})

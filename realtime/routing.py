from __future__ import annotations

from django.urls import path

from realtime.consumers import CaseRoomConsumer, QueueFeedConsumer

websocket_urlpatterns = [
    path("ws/cases/<str:reference>/", CaseRoomConsumer.as_asgi()),
    path("ws/queue/", QueueFeedConsumer.as_asgi()),
]

"""ASGI entry point: HTTP goes to Django, websockets to the consumers in realtime/."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")
# Django must be set up before the consumers (and the models they import) load.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from consult.bodylimit import install as bound_request_bodies  # noqa: E402
from realtime.auth import OutageGuard, TokenOrOriginValidator  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.shutdown import install as drain_sockets_on_sigterm  # noqa: E402

drain_sockets_on_sigterm()
bound_request_bodies()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Browsers: session cookie + Origin check. Apps: API token, no Origin needed.
        "websocket": OutageGuard(TokenOrOriginValidator(URLRouter(websocket_urlpatterns))),
    }
)

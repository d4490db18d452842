"""Which renderer answers an API request.

DRF's browsable API is a developer's tool, and its pages do not keep the site's strict
Content-Security-Policy (inline style attributes in its templates; consult/settings.py allows
nothing inline). With DEBUG off it is never chosen: a browser opening an API address reads JSON
(its Accept header always ends with */*), and the readable documentation stays at /api/v1/docs/,
whose page keeps the policy. With DEBUG on (`make run`) developers keep the browsable pages.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> Any:
        # Read at each request, not at start: the settings a process runs with decide.
        if not settings.DEBUG:
            renderers = [r for r in renderers if not isinstance(r, BrowsableAPIRenderer)] or renderers
        return super().select_renderer(request, renderers, format_suffix)

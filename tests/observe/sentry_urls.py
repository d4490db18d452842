"""The site's pages and `/boom/`, which fails after reading its form (tests/observe/test_sentry.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from consult.urls import urlpatterns as site


def boom(request: HttpRequest) -> HttpResponse:
    request.POST  # noqa: B018 - the body is read, as a form's view reads it
    raise RuntimeError("the view failed")


urlpatterns = [path("boom/", boom), *site]

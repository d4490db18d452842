"""The project's settings with one more page, `/boom/`, that fails: for the error-report test only
(a subprocess runs with these and SENTRY_DSN set, so Sentry is initialised there alone)."""

from __future__ import annotations

from consult.settings import *  # noqa: F403

ROOT_URLCONF = "tests.observe.sentry_urls"

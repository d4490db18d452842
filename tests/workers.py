"""pytest-xdist's workers (`make test` runs several) share the machine's Redis: each takes a
database of its own, numbered from REDIS_URL's, so channel groups, job queues, the cache and the
limits of one worker's tests never meet another's (case ids repeat across the workers' test
databases). Redis's publish/subscribe channels are one space for all its databases, so the
channel layer's prefix (CHANNELS_PREFIX) is the worker's own too. Loaded with `-p` so that it
runs before pytest-django reads the settings; processes the tests start inherit them."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL")
    if not worker.startswith("gw") or not url:
        return
    parts = urlsplit(url)
    first = int(parts.path.strip("/") or 0)
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{first + int(worker[2:])}"))
    os.environ["CHANNELS_PREFIX"] = f"{os.environ.get('CHANNELS_PREFIX', 'consult')}-{worker}"

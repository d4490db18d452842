"""The sockets' fixtures (tests/realtime) and real workers' (tests/jobs), shared with these tests."""

from __future__ import annotations

from tests.jobs.test_worker import jobs  # noqa: F401
from tests.realtime.conftest import connect, fresh_channel_layer  # noqa: F401

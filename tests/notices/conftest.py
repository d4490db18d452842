from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def retries_without_waiting(settings: Any) -> None:
    """Jobs run inline in tests (eager): a retry runs at once, so its wait must be nothing."""
    settings.NOTICE_RETRY_SECONDS = 0

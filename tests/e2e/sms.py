"""SMS in the browser tests: the server (another process) sends them with the `file` backend to
the test's `sms_folder`, through a real Celery worker on the test's own queue (`job_worker`; both
fixtures in tests/e2e/conftest.py), and the test reads them there."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any


def sent(folder: Path, phone: str) -> list[dict[str, Any]]:
    """The SMS sent to `phone` so far, oldest first."""
    lines = [line for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]
    return [m for m in map(json.loads, lines) if m["phone"] == phone]


def wait_for_sms(folder: Path, phone: str, kind: str, count: int = 1, timeout: float = 60) -> dict[str, Any]:
    """The `count`th SMS of `kind` to `phone`, waited for: the worker sends it after the request's
    commit (and may still be starting on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [m for m in sent(folder, phone) if m["kind"] == kind]
        if len(mine) >= count:
            return mine[count - 1]
        time.sleep(0.1)
    raise AssertionError(f"no SMS {kind} #{count} reached {phone}; sent: {sent(folder, phone)}")


def sms_code(folder: Path, phone: str, count: int = 1) -> str:
    return str(wait_for_sms(folder, phone, "verification_code", count)["params"]["code"])


def link_path(text: str) -> str:
    """The path of the link an SMS carries (its host is SITE_URL, not the test server's)."""
    found = re.search(r"https?://[^/\s]+(/\S*)", text)
    assert found, f"no link in {text!r}"
    return found.group(1)

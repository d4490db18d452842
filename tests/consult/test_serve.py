"""`manage.py serve` with DEBUG off collects the static files before it starts anything: a page
rendered without the manifest is a 500 (issue 14, "collectstatic in the production start-up")."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from consult.management.commands import serve


class Started(Exception):
    """The first process the command starts: the test stops there."""


@pytest.fixture(autouse=True)
def signals_restored() -> Iterator[None]:
    # The command takes Ctrl-C and SIGTERM for itself: given back to the test run after.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.fixture
def first_start(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> dict[str, Any]:
    """What the static folder held when `serve` started its first process (daphne)."""
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    seen: dict[str, Any] = {}

    def popen(command: list[str], **kwargs: Any) -> Any:
        seen["command"] = command
        seen["manifest"] = (tmp_path / "staticfiles" / "staticfiles.json").exists()
        raise Started

    monkeypatch.setattr(serve.subprocess, "Popen", popen)
    return seen


def test_it_collects_the_static_files_before_daphne_starts_when_debug_is_off(
    first_start: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    settings.DEBUG = False

    with pytest.raises(Started):
        call_command("serve", "--port", "0")

    assert "daphne" in first_start["command"]
    assert first_start["manifest"] is True
    assert (tmp_path / "staticfiles" / "css").is_dir()


def test_it_collects_nothing_with_debug_on(first_start: dict[str, Any], settings: Any, tmp_path: Path) -> None:
    settings.DEBUG = True

    with pytest.raises(Started):
        call_command("serve", "--port", "0")

    assert first_start["manifest"] is False
    assert not (tmp_path / "staticfiles").exists()

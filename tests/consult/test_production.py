"""The site serves with DEBUG off from a fresh copy of the repository by README's own production
steps ("Production from a fresh clone"): the steps are read from the README and run as written
(but the package installs, already done for this interpreter, and the environment, set here), then
the pages answer 200 with a style sheet and scripts the browser can fetch by their hashed names.
(`check --deploy` with the production environment: tests/consult/test_settings.py.)"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import stop_process
from tests.live import free_port

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PAGES = ("/", "/accounts/login/", "/accounts/signup/", "/track/", "/figures/", "/api/v1/docs/")
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


def readme_steps() -> list[list[str]]:
    """The commands of README's production block, continuation lines joined, comments dropped."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Production from a fresh clone", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = (shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines())
    return [command for command in commands if command]


def fresh_copy(target: Path) -> Path:
    """What a clone holds: the files git tracks or would track (nothing ignored: no compiled
    translations, no collected static files, no database)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


# It runs on its own SQLite file whatever the pass: once (the embedded pass) is enough.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CONSULT_REQUIRE_SERVICES") == "1", reason="the same run as in the embedded pass"
    ),
]


@pytest.fixture
def production(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "consult.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(45),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": "https://127.0.0.1",
        "SITE_URL": "https://127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PRIVATE_FILES_ROOT": str(tmp_path / "private"),
        # SQLite and local files in place of README's PostgreSQL, Redis and S3: this test is one box.
        "SINGLE_MACHINE": "true",
        # No TLS proxy in front of this test's daphne: plain http must not be redirected.
        "SECURE_SSL_REDIRECT": "false",
    }


@pytest.fixture
def served(tmp_path: Path, production: dict[str, str]) -> Iterator[str]:
    site = fresh_copy(tmp_path / "clone")
    daphne: subprocess.Popen[bytes] | None = None
    port = free_port()
    steps = readme_steps()
    log = tmp_path / "daphne.log"
    ran = []
    try:
        for step in steps:
            program = step[0]
            if program in ("sudo", "python3", "export"):
                continue  # system packages and the virtualenv are this machine's; the environment is above
            if program == ".venv/bin/python":
                result = subprocess.run(
                    [sys.executable, *step[1:]], cwd=site, env=production, capture_output=True, text=True,
                    timeout=300, check=False,
                )
                assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])
            elif program == ".venv/bin/daphne":
                endpoint = step[step.index("-e") + 1]
                assert "port=8000:interface=0.0.0.0:" in endpoint, endpoint
                arguments = [
                    a.replace("port=8000:interface=0.0.0.0:", f"port={port}:interface=127.0.0.1:") for a in step[1:]
                ]
                with log.open("wb") as out:
                    daphne = subprocess.Popen(
                        [str(VENV_BIN / "daphne"), *arguments], cwd=site, env=production,
                        stdout=out, stderr=subprocess.STDOUT,
                    )
            else:
                pytest.fail(f"README production step not understood by this test: {step}")
            ran.append(step[:3])
        assert daphne is not None, "the README's steps start no daphne"
        assert [".venv/bin/python", "manage.py", "collectstatic"] in ran
        url = f"http://127.0.0.1:{port}"
        wait_for(url, log)
        yield url
    finally:
        if daphne is not None:
            stop_process(daphne)


def wait_for(url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/services/", timeout=10):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError as error:
            pytest.fail(f"daphne answered {error.code}: {log.read_text()[-3000:]}")
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"daphne did not answer on {url}: {log.read_text()[-3000:]}")


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, dict(answer.headers), answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


def assets_of(page: str) -> list[str]:
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    return [*sheets, *scripts]


def test_it_serves_pages_with_their_css_and_js_with_debug_off_by_the_readmes_steps(served: str) -> None:
    assets: set[str] = set()
    for path in PAGES:
        status, headers, page = fetch(served + path)
        assert status == 200, (path, status, page[:500])
        assert "Content-Security-Policy" in headers, path
        assets.update(assets_of(page.replace("&amp;", "&")))

    assert any(a.startswith("/static/css/site.") and HASHED.search(a) for a in assets), assets
    answers: dict[str, Any] = {asset: fetch(served + asset) for asset in sorted(assets)}
    assert {asset: status for asset, (status, _h, _b) in answers.items()} == dict.fromkeys(answers, 200)
    for asset, (_status, headers, body) in answers.items():
        kind = headers["Content-Type"]
        assert ("css" in kind) if ".css" in asset else ("javascript" in kind), (asset, kind)
        assert body.strip(), asset
    # Swagger UI comes from these static files (drf-spectacular-sidecar), not from a CDN.
    assert any("swagger-ui-bundle" in a for a in assets), assets
    # The error pages' style sheet is served by its plain name (they never read the manifest).
    assert fetch(served + "/static/css/errors.css")[0] == 200
    # Missing pages are 404, not 500.
    assert fetch(served + "/no-such-page/")[0] == 404


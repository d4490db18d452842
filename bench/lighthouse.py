"""Lighthouse's accessibility and performance scores of the pages a resident uses most, on a phone
(Lighthouse's default mobile profile: a mid-range phone, slow 4G, CPU slowed 4x), in Chinese.

A daphne on the embedded defaults (SQLite in a temporary folder, in-memory channel layer) with
DEBUG off (the static files collected, compressed and cached as in production) and the demo data;
the resident's pages are asked with the session cookie of the first demo resident.

    .venv/bin/python -m bench.lighthouse

`make bench` runs it after the other benchmarks (and installs Lighthouse with npm ci in
bench/lighthouse/). Goals: accessibility >= 95, performance >= 90.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "bench" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
GOALS = {"accessibility": 95, "performance": 90}
RUNS = int(os.environ.get("BENCH_LIGHTHOUSE_RUNS", "3"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="consult.settings",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        PRIVATE_FILES_ROOT=str(folder / "private"),
        DEBUG="false",
        SINGLE_MACHINE="true",  # SQLite, local files: the scores of one box's pages
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def _session_and_paths(env: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """The first demo resident's session cookie and the pages to measure."""
    script = (
        "import django, json; django.setup()\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "from consult.models import Case, User\n"
        "case = Case.objects.select_related('resident', 'skill').filter(kind='medical').order_by('pk').first()\n"
        "client = Client(); client.force_login(case.resident)\n"
        "name = settings.SESSION_COOKIE_NAME\n"
        "print(json.dumps({'cookie': name + '=' + client.cookies[name].value,"
        " 'case': case.reference, 'skill': case.skill.code}))\n"
    )
    found = json.loads(
        subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    paths = {
        "home": "/",
        "intake": f"/services/{found['skill']}/new/",
        "case": f"/cases/{found['case']}/",
        "track": f"/track/?ref={found['case']}",
    }
    return found["cookie"], found["case"], paths


def _wait(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - our own loopback server
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer on {url}")


def _lighthouse(url: str, cookie: str | None) -> dict[str, float]:
    headers = {"Accept-Language": "zh-hans", **({"Cookie": cookie} if cookie else {})}
    result = subprocess.run(  # noqa: S603 - the pinned Lighthouse, our arguments
        [
            str(LIGHTHOUSE), url, "--quiet", "--output=json", "--output-path=stdout",
            "--only-categories=accessibility,performance", "--locale=zh",
            "--chrome-flags=--headless --no-sandbox --disable-gpu",
            f"--extra-headers={json.dumps(headers)}",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM}, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"lighthouse failed on {url}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    # A refused session would measure the log-in page instead: the page shown must be the one asked.
    if report.get("finalDisplayedUrl") != url:
        raise SystemExit(f"lighthouse was shown {report.get('finalDisplayedUrl')} instead of {url}")
    return {name: round(category["score"] * 100) for name, category in report["categories"].items()}


def run() -> bool:
    """Prints one line per page; True when every page meets both goals."""
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"Lighthouse is missing at {LIGHTHOUSE}: `make bench` installs it (npm ci).")
    folder = Path(tempfile.mkdtemp(prefix="consult-lighthouse-"))
    env = _environment(folder)
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed_demo")
    _manage(env, "collectstatic", "--noinput")
    cookie, _case, paths = _session_and_paths(env)
    port = _free_port()
    log = (folder / "daphne.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our own daphne and arguments
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "consult.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    met = True
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/")
        print(f"\nLighthouse {RUNS} run(s) a page, median, mobile profile: goals accessibility >= "
              f"{GOALS['accessibility']}, performance >= {GOALS['performance']}")
        print(f"{'page':<8} {'path':<34} {'accessibility':>13} {'performance':>12}")
        for name, path in paths.items():
            signed_in = name in ("intake", "case")
            runs = [_lighthouse(base + path, cookie if signed_in else None) for _ in range(RUNS)]
            scores = {key: sorted(r[key] for r in runs)[len(runs) // 2] for key in GOALS}
            ok = all(scores[key] >= goal for key, goal in GOALS.items())
            met = met and ok
            verdict = "" if ok else "below goal"
            print(f"{name:<8} {path:<34} {scores['accessibility']:>13} {scores['performance']:>12}  {verdict}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return met


if __name__ == "__main__":
    run()

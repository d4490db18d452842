"""deploy/ is what an IT team starts from: nginx accepts the site as rendered, systemd accepts the
units, the units agree with the code (daphne's options, the shutdown bound), and the environment
file names every variable the settings read."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

from consult.management.commands.serve import DAPHNE_OPTIONS, LISTEN_BACKLOG, PROXY_OPTIONS
from notices.kinds import NoticeKind
from realtime.shutdown import DRAIN_SECONDS
from tests.deploy import DEPLOY, NGINX, nginx_main_conf, render_site, self_signed_certificate
from tests.live import ROOT

UNITS = DEPLOY / "systemd"
ENV_TEMPLATE = DEPLOY / "consult.env.example"
# Read by the settings but never set in production: local folders of the one-machine setup
# (files live in S3 there; SMS go to a provider).
DEV_ONLY = {"PRIVATE_FILES_ROOT", "SMS_FILE_PATH"}


def template_names() -> set[str]:
    """Every variable the template names, set or commented out (`#NAME=`)."""
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_TEMPLATE.read_text(), flags=re.MULTILINE))


def test_it_names_every_variable_the_settings_read_in_the_environment_file() -> None:
    settings_text = (ROOT / "consult" / "settings.py").read_text()
    read = set(re.findall(r"\benv_[a-z]+\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_text))
    assert len(read) > 60  # the pattern still finds what the settings read
    missing = sorted(read - template_names() - DEV_ONLY)
    assert missing == [], f"add these to deploy/consult.env.example (or to DEV_ONLY, saying why): {missing}"
    templates = {f"SMS_TEMPLATE_{kind.name}" for kind in NoticeKind}
    assert sorted(templates - template_names()) == []


def test_it_holds_the_apps_body_limit_in_nginx() -> None:
    from django.conf import settings

    site = (DEPLOY / "nginx" / "consult.conf").read_text()
    (megabytes,) = re.findall(r"client_max_body_size (\d+)m;", site)
    assert int(megabytes) * 1024 * 1024 == settings.REQUEST_MAX_BYTES


def test_nginx_accepts_the_site_as_rendered(tmp_path: Path) -> None:
    assert NGINX.exists(), "nginx is not installed (make test installs it: TEST_PACKAGES)"
    certificate, key = self_signed_certificate(tmp_path, "consult.example.org")
    site = render_site(
        {
            "SERVER_NAME": "consult.example.org",
            "TLS_CERTIFICATE": str(certificate),
            "TLS_CERTIFICATE_KEY": str(key),
            "STATIC_ROOT": str(ROOT / "staticfiles"),
            "APP_SERVERS": "server 127.0.0.1:8001 max_fails=1 fail_timeout=10s;\n"
            "    server 127.0.0.1:8002 max_fails=1 fail_timeout=10s;",
        },
        tmp_path,
    )
    conf = nginx_main_conf(tmp_path, site)
    checked = subprocess.run([str(NGINX), "-t", "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
    assert "[warn]" not in checked.stderr, checked.stderr


def rendered_units(directory: Path) -> Path:
    """The units with the project where they say /srv/consult (systemd checks that ExecStart exists)."""
    for unit in UNITS.iterdir():
        (directory / unit.name).write_text(unit.read_text().replace("/srv/consult", str(ROOT)))
    return directory


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian's systemd package)"
    directory = rendered_units(tmp_path)
    names = ["consult-daphne@8001.service", "consult-worker.service", "consult-beat.service", "consult.target"]
    checked = subprocess.run(
        [analyze, "verify", "--man=no", *(str(directory / n) for n in names)],
        capture_output=True,
        text=True,
        cwd=directory,
    )
    ours = [line for line in checked.stderr.splitlines() if "consult" in line]
    assert checked.returncode == 0 and ours == [], checked.stderr


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_the_daphne_unit_runs_daphne_as_make_run_does_and_waits_for_its_drain() -> None:
    service = unit("consult-daphne@.service")["Service"]
    command = service["ExecStart"].split()
    assert command[0].endswith("/daphne")
    joined = " ".join(command)
    assert " ".join(DAPHNE_OPTIONS) in joined and " ".join(PROXY_OPTIONS) in joined
    assert command[-1] == "consult.asgi:application"
    # The instance is the port, listened on with make run's backlog.
    assert f"-e tcp:port=%i:interface=${{DAPHNE_BIND}}:backlog={LISTEN_BACKLOG}" in joined
    # systemd's SIGKILL must not cut the drain (sockets closed with 4503, presence cleaned up).
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= DRAIN_SECONDS + 5
    assert service["EnvironmentFile"] == "/etc/consult/consult.env"


def test_exactly_one_beat_and_workers_that_finish_their_jobs() -> None:
    beat = unit("consult-beat.service")["Service"]["ExecStart"]
    worker = unit("consult-worker.service")
    assert " beat " in beat
    assert "--without-mingle --without-gossip" in worker["Service"]["ExecStart"]
    assert worker["Service"]["KillSignal"] == "SIGTERM"  # Celery's warm shutdown
    assert "one" in (UNITS / "consult-beat.service").read_text().lower()

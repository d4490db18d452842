"""A real ClamAV daemon for the tests, with a one-signature database (EICAR) written on the spot:
no signature download is possible here. Started once per session, on a Unix socket in a temp dir.

clamd (Debian's clamav-daemon, `make test` installs it) starts in well under a second with this
database. Without it the scan tests skip, except in CI's services pass (CONSULT_REQUIRE_SERVICES=1),
where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consult.hostile_files import EICAR

SIGNATURE = "Eicar-Test-Signature-Local"


def _ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(1)
            conn.connect(str(path))
            conn.sendall(b"zPING\0")
            return conn.recv(16).startswith(b"PONG")
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CONSULT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"clamd is required in the services pass: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def clamd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    binary = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
    if binary is None:
        _unavailable("clamd is not installed (Debian package clamav-daemon)")
    assert binary is not None
    folder = tmp_path_factory.mktemp("clamav")
    (folder / "local.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
    sock = folder / "clamd.sock"
    config = folder / "clamd.conf"
    lines = [
        f"DatabaseDirectory {folder}",
        f"LocalSocket {sock}",
        "Foreground yes",
        f"LogFile {folder / 'clamd.log'}",
    ]
    if os.geteuid() == 0:
        lines.append("User root")
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _ping(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            _unavailable(f"clamd did not start: {err.decode(errors='replace')[-500:]}")
        time.sleep(0.1)
    try:
        yield sock
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

"""A real S3 API for the tests: moto's standalone server on a loopback port, spoken to over HTTP.

moto accepts any signature and does not enforce expiry; it does refuse unsigned reads of private
objects, which is what the privacy tests rely on.
"""

from __future__ import annotations

import functools
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
START_TIMEOUT_SECONDS = 15.0

# Straight to the loopback server, whatever proxy the environment names.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes, Message]:
    """GET without credentials; an error status is returned, not raised."""
    try:
        with _opener.open(url, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @functools.cached_property
    def session(self) -> boto3.session.Session:
        """One boto3 session for the run: a new one re-reads the S3 model (about 0.25 s)."""
        return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def client(self) -> Any:
        return self.session.client("s3", endpoint_url=self.endpoint, region_name=REGION)

    def new_bucket(self) -> str:
        """A fresh private bucket, so no test sees another's objects."""
        name = f"consult-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_moto_server(log: Path) -> MotoServer:
    """Start `moto_server` and wait until it answers. Raises RuntimeError (with its log) if not."""
    binary = Path(sys.executable).parent / "moto_server"
    port = free_port()
    with log.open("wb") as out:
        try:
            process = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
            )
        except OSError as error:
            raise RuntimeError(f"cannot run {binary}: {error}") from error
    server = MotoServer(process=process, port=port)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            http_get(server.endpoint)
        except OSError:
            time.sleep(0.05)
            continue
        return server
    server.stop()
    raise RuntimeError(
        f"moto_server did not answer on port {port} within {START_TIMEOUT_SECONDS:.0f} s:\n"
        f"{log.read_text(errors='replace')}"
    )


def s3_storage(*, endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    """STORAGES["default"] for S3, in the same shape as the S3 block of consult/settings.py (with
    its client timeouts)."""
    from django.conf import settings

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": "AES256"},
            "signature_version": "s3v4",
            "client_config": settings.S3_CLIENT_CONFIG,
            **extra,
        },
    }


@contextmanager
def hung_endpoint() -> Iterator[str]:
    """An S3 endpoint that hangs: a loopback server that accepts every connection and never
    sends a byte. Yields its URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                connection, _address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


@contextmanager
def answered_within(seconds: int) -> Iterator[None]:
    """Fail the test if the block is still running after `seconds` (a request stuck on a hung
    store), interrupting it rather than waiting minutes. Main thread only (SIGALRM)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        pytest.fail(f"no answer after {seconds} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

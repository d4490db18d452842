"""`make run`: daphne, a Celery worker and Celery beat, started and stopped together (with DEBUG
off, after collectstatic).

One command with nothing to configure: on the embedded defaults the worker and beat share the
broker folder with daphne (see CELERY_BROKER_URL in settings). Ctrl-C (or SIGTERM) stops all
three; when one of them exits by itself the others are stopped too, and the command fails, so a
half-running site is never left behind. Production runs the three as services of their own.
With DEBUG off on the embedded defaults (SQLite, local files, the folder queue) the settings refuse
to start unless SINGLE_MACHINE=true: honest here, the three share this machine's disk.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import IO, Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

# How long a websocket handshake may wait for the application (daphne's default is 5 s). In a
# reconnect storm every socket of a process comes back at once and waits its turn for the
# database: a handshake dropped at 5 s is a client that retries later and a connect done for
# nothing, which made the storm worse (2,000 sockets on two daphnes: 282 connected and 1,718
# dropped with the default; all 2,000 connected with 30 s). Production runs daphne with these too.
DAPHNE_OPTIONS = ["--websocket_connect_timeout", "30"]
# Behind TRUSTED_PROXIES proxies daphne reads X-Forwarded-Proto (so a page reached over https says
# so, websockets too) and X-Forwarded-For. Daphne takes the leftmost X-Forwarded-For entry, which a
# client may write: the limits and the lockout never use it but consult/net.py's rule. Never
# without a proxy, or any client could name its own scheme.
PROXY_OPTIONS = ["--proxy-headers"]
STOP_SECONDS = 15.0  # daphne drains its sockets within 10 s
# Connections the kernel holds for daphne before it accepts them (Twisted's default is 50; Linux
# caps it at net.core.somaxconn, 4096 by default). Past it a new connection's SYN is dropped and
# the client's kernel sends it again only after 1, 3, 7, 15 s: in a reconnect storm of 2,000
# sockets on two daphnes, 523 overflows made handshakes arrive in waves 5 s apart, most of the
# storm's 31 s. Twisted's endpoint string is the only way to say it (daphne's -b/-p cannot).
LISTEN_BACKLOG = 2048


def listen_options(host: str, port: int) -> list[str]:
    """daphne's options for listening on host:port with LISTEN_BACKLOG (in place of -b/-p)."""
    from daphne.endpoints import build_endpoint_description_strings

    endpoint = build_endpoint_description_strings(host=host, port=port)[0]
    return ["-e", f"{endpoint}:backlog={LISTEN_BACKLOG}"]


def daphne_command(host: str, port: int) -> list[str]:
    proxy = PROXY_OPTIONS if settings.TRUSTED_PROXIES > 0 else []
    return [sys.executable, "-m", "daphne", *listen_options(host, port), *DAPHNE_OPTIONS, *proxy,
            "consult.asgi:application"]


def _relay(name: str, stream: IO[bytes], out: IO[str], lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            out.write(f"{name:<6} | {line}\n")
            out.flush()


class Command(BaseCommand):
    help = "Serve the site with daphne beside a Celery worker and beat; Ctrl-C stops all three."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            # With DEBUG off every page names its static files from the manifest collectstatic
            # writes: without it, each page is a 500. Collected on every start, so a deployment
            # that changed a style sheet serves the new one (unchanged files are skipped).
            self.stdout.write("Collecting static files (DEBUG is off)...")
            call_command("collectstatic", interactive=False, verbosity=0)
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "consult"]
        commands = {
            "daphne": daphne_command(options["host"], options["port"]),
            # Mingle and gossip talk to other workers: there are none here, and on the filesystem
            # broker they would only poll.
            "worker": [*celery, "worker", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            "beat": [*celery, "beat", "--loglevel", "INFO"],
        }
        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        lock = threading.Lock()
        processes: dict[str, subprocess.Popen[bytes]] = {}
        failed = ""
        try:
            for name, command in commands.items():
                # A session of its own: Ctrl-C reaches this command only, which stops each child once.
                process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
                    command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                processes[name] = process
                assert process.stdout is not None
                threading.Thread(target=_relay, args=(name, process.stdout, sys.stdout, lock), daemon=True).start()
                with lock:
                    self.stdout.write(f"{name} started (pid {process.pid})")
            while not stopping.is_set():
                for name, process in processes.items():
                    if process.poll() is not None:
                        failed = f"{name} exited with {process.returncode}"
                        stopping.set()
                        break
                stopping.wait(0.2)
        finally:
            self._stop_all(processes)
        if failed:
            raise CommandError(f"{failed}; the others were stopped")

    def _stop_all(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for name, process in processes.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            self.stdout.write(f"{name} stopped ({process.returncode})")

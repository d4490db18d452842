"""Hosts on one machine: each a network namespace of its own with one interface (veth) on a private
subnet, joined by a bridge in a "switch" namespace; the test process (in the machine's own
namespace) is the internet, with one more interface on that switch. Taking a host's link down is
then what a dead machine looks like from the others: no reset, no answer, until TCP gives up.

Everything carries a suffix of its own run (namespaces, interfaces, folders) and takes a subnet no
route of the machine uses, so a run that crashed leaves nothing a later run trips on. `close()`
stops every process started in the hosts, then deletes the namespaces (and so their interfaces).
Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.cluster import HarnessError, stop_process, tail

IP = "/usr/sbin/ip"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise HarnessError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def wait_for_tcp(
    address: str,
    port: int,
    what: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HarnessError(f"{what} exited with {process.returncode}:\n{tail(log) if log else ''}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{what} did not listen on {address}:{port} within {timeout} s:\n{tail(log) if log else ''}")


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 under 10.77.0.0/16 that no route of this machine touches."""
    used = [
        ipaddress.ip_network(line.split()[0], strict=False)
        for line in run(IP, "-4", "route", "show", "table", "all").stdout.splitlines()
        if line and line.split()[0][0].isdigit()
    ]
    candidates = list(range(256))
    random.shuffle(candidates)
    for third in candidates:
        subnet = ipaddress.IPv4Network(f"10.77.{third}.0/24")
        if not any(subnet.overlaps(route) for route in used if route.prefixlen > 0):
            return subnet
    raise HarnessError("no free /24 under 10.77.0.0/16")


class Host:
    def __init__(self, network: Network, name: str, address: str) -> None:
        self.network = network
        self.name = name
        self.namespace = f"consult-{network.suffix}-{name}"
        self.address = address
        self.processes: list[subprocess.Popen[bytes]] = []

    def popen(
        self, command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """A process on this host (ip netns exec replaces itself with `command`: its pid is ours)."""
        process = subprocess.Popen(
            [IP, "netns", "exec", self.namespace, *command],
            env=env,
            cwd=cwd,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def run(
        self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [IP, "netns", "exec", self.namespace, *command],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise HarnessError(
                f"{self.name}: {' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def link(self, *, up: bool) -> None:
        """The host's only network interface up or down (down: a machine that died, seen from the others)."""
        run(IP, "-n", self.namespace, "link", "set", "eth0", "up" if up else "down")

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                stop_process(process, timeout=10)
        # Whatever still runs in the namespace was started by us (daemons that forked, children).
        for _attempt in range(2):
            pids = run(IP, "netns", "pids", self.namespace, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.2)


class Network:
    """The switch, the hosts on it, and the test process's own interface."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise HarnessError("the cluster test builds network namespaces: it runs as root")
        if not os.access(IP, os.X_OK):
            raise HarnessError(f"{IP} is missing (Debian's iproute2)")
        self.suffix = secrets.token_hex(3)
        self.subnet = free_subnet()
        self.switch = f"consult-{self.suffix}-sw"
        self.hosts: dict[str, Host] = {}
        self.namespaces: list[str] = []
        self.client_link = f"cl{self.suffix}"
        self.client_address = str(self.subnet.network_address + 1)
        self._add_namespace(self.switch)
        run(IP, "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run(IP, "-n", self.switch, "link", "set", "br0", "up")
        # The test process's own leg: the internet the residents come from.
        run(IP, "link", "add", self.client_link, "type", "veth", "peer", "name", "up-client", "netns", self.switch)
        run(IP, "-n", self.switch, "link", "set", "up-client", "master", "br0", "up")
        run(IP, "addr", "add", f"{self.client_address}/{self.subnet.prefixlen}", "dev", self.client_link)
        run(IP, "link", "set", self.client_link, "up")

    def _add_namespace(self, name: str) -> None:
        run(IP, "netns", "add", name)
        self.namespaces.append(name)
        run(IP, "-n", name, "link", "set", "lo", "up")

    def add_host(self, name: str, last_octet: int) -> Host:
        host = Host(self, name, str(self.subnet.network_address + last_octet))
        self._add_namespace(host.namespace)
        port = f"up-{name}"
        run(
            IP,
            "link",
            "add",
            "eth0",
            "netns",
            host.namespace,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            self.switch,
        )
        run(IP, "-n", self.switch, "link", "set", port, "master", "br0", "up")
        run(IP, "-n", host.namespace, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        run(IP, "-n", host.namespace, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in reversed(list(self.hosts.values())):
            with contextlib.suppress(Exception):
                host.stop()
        run(IP, "link", "del", self.client_link, check=False)
        for name in reversed(self.namespaces):
            run(IP, "netns", "del", name, check=False)


class PostgresHost:
    """Debian's PostgreSQL 15 binaries, run by the postgres user on the database host: initdb in a
    folder of this run, listening on the host's address only, trusting the subnet."""

    def __init__(self, host: Host, suffix: str) -> None:
        if not (PG_BIN / "initdb").exists():
            raise HarnessError(f"{PG_BIN}/initdb is missing (Debian's postgresql-15)")
        self.host = host
        self.root = Path(tempfile.mkdtemp(prefix=f"consult-{suffix}-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgresql.log"
        shutil.chown(self.root, "postgres", "postgres")
        self.port = 5432
        self.restarts: list[float] = []

    def pg(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.host.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / command[0]), *command[1:]], timeout=timeout
        )

    def start(self) -> None:
        self.pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.host.network.subnet} trust\n")
        # Durability is not what this test measures: no fsync, so a restart is quick.
        options = (
            f"-c listen_addresses={self.host.address} -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.pg("createdb", "-h", self.host.address, "-U", "postgres", "consult")

    @property
    def url(self) -> str:
        return f"postgres://postgres@{self.host.address}:{self.port}/consult"

    def restart(self) -> float:
        """pg_ctl restart -m fast: every connection is cut, the server is back when this returns."""
        started = time.monotonic()
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")
        seconds = time.monotonic() - started
        self.restarts.append(seconds)
        return seconds

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "20", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

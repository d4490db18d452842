"""The project on the cluster test's hosts (tests/hosts.py): what `start_cluster` builds and
runs (a balancer, two app hosts with daphne and a Celery worker each, PostgreSQL, Redis with a
replica and sentinels, S3), and the balancer's access log read back. Used by
tests/test_cluster_hosts.py and bench/cluster.py."""

from __future__ import annotations

import re
import shlex
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import redis
import requests

from tests.cluster import REDIS_SERVER, HarnessError, production_env
from tests.deploy import DEPLOY, NGINX, nginx_main_conf, render_site, self_signed_certificate
from tests.hosts import Host, Network, PostgresHost, run, wait_for_tcp
from tests.live import ROOT

DAPHNE_PORT = 8001
SENTINEL_PORT = 26379
SENTINEL_MASTER = "consult"
FAIL_TIMEOUT = 10  # seconds nginx skips a daphne after a failure (max_fails=1), then tries it again
UNIT_STOP_SECONDS = 20  # TimeoutStopSec of deploy/systemd/consult-daphne@.service


@dataclass
class Daphne:
    """One app host's daphne, started as its systemd unit would start it."""

    host: Host
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = self.host.popen(self.command, self.log, env=self.env, cwd=ROOT)

    def wait(self) -> None:
        wait_for_tcp(self.host.address, DAPHNE_PORT, f"daphne on {self.host.name}", 60, self.process, self.log)

    def restart(self) -> tuple[int | None, float]:
        """`systemctl restart consult-daphne@8001`: SIGTERM (the sockets drain, 4503), wait up to the
        unit's TimeoutStopSec, start again. The exit code and the seconds the stop took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=UNIT_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            code = None
        stopped = time.monotonic() - started
        self.start()
        self.wait()
        return code, stopped


@dataclass
class Cluster:
    network: Network
    balancer: Host
    apps: list[Host]
    postgres: PostgresHost
    base: str  # https://<balancer>
    certificate: Path
    access_log: Path
    bucket: str
    s3_endpoint: str
    sms: Path
    timings: dict[str, float]
    daphnes: dict[str, Daphne]
    redis_hosts: list[Host]
    sentinels: list[str]

    def redis_master(self) -> str:
        """The master's address as the sentinels that can be reached say it (those on lost hosts cannot)."""
        for address in self.sentinels:
            host, port = address.rsplit(":", 1)
            client = redis.Redis(host=host, port=int(port), socket_timeout=1, socket_connect_timeout=1)
            try:
                master, _port = client.execute_command("SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER)
                return master.decode() if isinstance(master, bytes) else str(master)
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise HarnessError("no sentinel answers")

    def redis_failover(self) -> float:
        """The master's host lost (its link down); seconds until the sentinels name the replica."""
        lost = self.redis_hosts[0]
        started = time.monotonic()
        lost.link(up=False)
        while time.monotonic() - started < 30:
            if self.redis_master() == self.redis_hosts[1].address:
                return time.monotonic() - started
            time.sleep(0.1)
        raise HarnessError("the sentinels did not promote the replica within 30 s")

    def session(self) -> requests.Session:
        http = requests.Session()
        http.trust_env = False
        http.verify = str(self.certificate)
        http.headers["Accept-Language"] = "en"
        return http

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))

    def app_of(self, upstream: str) -> str:
        """ "app1" for "10.77.x.11:8001" (the first daphne tried, when nginx tried several)."""
        first = upstream.split(",")[0].strip().rsplit(":", 1)[0]
        return next((app.name for app in self.apps if app.address == first), upstream)


def unit_command(name: str, **values: str) -> list[str]:
    """ExecStart of a deploy/systemd unit, as systemd would run it on an app host."""
    text = (DEPLOY / "systemd" / name).read_text()
    (line,) = re.findall(r"^ExecStart=(.*)$", text, flags=re.MULTILINE)
    line = line.replace("/srv/consult", str(ROOT))
    for key, value in values.items():
        line = line.replace(key, value)
    return shlex.split(line)


def popen_in_root(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A command on the machine itself (collectstatic needs no network)."""
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def start_cluster(directory: Path, cleanup: list[Callable[[], None]], **extra_env: str) -> Cluster:
    """The hosts, their services and the balancer; `extra_env` goes to every app host (bench/cluster.py
    lifts the per-person limits)."""
    for binary in (NGINX, Path(REDIS_SERVER), ROOT / ".venv" / "bin" / "moto_server"):
        if not binary.exists():
            raise HarnessError(f"{binary} is missing")
    timings: dict[str, float] = {}
    started = time.monotonic()
    network = Network()
    cleanup.append(network.close)
    balancer = network.add_host("lb", 2)
    apps = [network.add_host("app1", 11), network.add_host("app2", 12)]
    db, store = network.add_host("db", 21), network.add_host("s3", 41)
    redis_hosts = [network.add_host("redis", 31), network.add_host("redis2", 32)]

    postgres = PostgresHost(db, network.suffix)
    cleanup.append(postgres.stop)
    postgres.start()
    # Redis behind Sentinel, as deploy/RUNBOOK.md sets it up: the master on one host, its replica on
    # another, and three sentinels (those two hosts and the database host): when the master's host
    # is lost, the two sentinels left are a majority and promote the replica.
    sentinel_hosts = [*redis_hosts, db]
    for n, host in enumerate(redis_hosts):
        log = directory / f"{host.name}.log"
        replica_of = ["--replicaof", redis_hosts[0].address, "6379"] if n else []
        folder = directory / host.name
        folder.mkdir()
        process = host.popen(
            [
                REDIS_SERVER, "--bind", host.address, "--port", "6379", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--dir", str(folder), *replica_of,
            ],
            log,
        )
        wait_for_tcp(host.address, 6379, f"redis-server on {host.name}", 20, process, log)
    for host in sentinel_hosts:
        folder = directory / f"sentinel-{host.name}"
        folder.mkdir()
        config = folder / "sentinel.conf"  # sentinel rewrites it: one of its own each
        config.write_text(
            f"port {SENTINEL_PORT}\nbind {host.address}\nprotected-mode no\ndaemonize no\ndir {folder}\n"
            f"sentinel monitor {SENTINEL_MASTER} {redis_hosts[0].address} 6379 2\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
            f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n"
        )
        log = folder / "sentinel.log"
        process = host.popen([REDIS_SERVER, str(config), "--sentinel"], log)
        wait_for_tcp(host.address, SENTINEL_PORT, f"sentinel on {host.name}", 20, process, log)
    sentinels = [f"{host.address}:{SENTINEL_PORT}" for host in sentinel_hosts]
    moto_log = directory / "moto.log"
    moto = store.popen([str(ROOT / ".venv" / "bin" / "moto_server"), "-H", store.address, "-p", "5000"], moto_log)
    wait_for_tcp(store.address, 5000, "moto_server", 30, moto, moto_log)
    s3_endpoint = f"http://{store.address}:5000"
    bucket = f"consult-{network.suffix}"
    s3 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    timings["services up"] = time.monotonic() - started

    sms = directory / "sms"
    env = production_env(
        "",  # Redis through the sentinels
        postgres.url,
        REDIS_SENTINELS=",".join(sentinels),
        REDIS_SENTINEL_MASTER=SENTINEL_MASTER,
        ALLOWED_HOSTS=balancer.address,
        CSRF_TRUSTED_ORIGINS=f"https://{balancer.address}",
        SITE_URL=f"https://{balancer.address}",
        SECURE_SSL_REDIRECT="true",
        TRUSTED_PROXIES="1",
        AWS_STORAGE_BUCKET_NAME=bucket,
        AWS_S3_REGION_NAME="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_S3_ENDPOINT_URL=s3_endpoint,
        SMS_BACKEND="file",
        SMS_FILE_PATH=str(sms),
        NOTICE_QUIET_START="0",
        NOTICE_QUIET_END="0",
        CHANNELS_PREFIX=f"cluster-{network.suffix}",
        CELERY_CONCURRENCY="1",
        # As deploy/'s environment file has it: several machines (no one-machine part may start),
        # a pool of connections per process.
        SINGLE_MACHINE="false",
        DB_POOL_SIZE="8",
        DB_CONN_MAX_AGE="0",
        # Prometheus's place: the test reads each app host's own figures (which host holds a socket).
        METRICS_ALLOWED_NETWORKS=str(network.subnet),
        **extra_env,
    )
    # Once, from one app host: the schema, then the demo cast (services, doctors, residents).
    moment = time.monotonic()
    collect = popen_in_root(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "collectstatic", "--noinput", "-v0"],
        env,
        directory / "collectstatic.log",
    )
    apps[0].run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT)
    timings["migrate"] = time.monotonic() - moment
    apps[0].run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "seed_demo"], env=env, cwd=ROOT)
    timings["migrate + seed"] = time.monotonic() - moment
    if collect.wait(timeout=300) != 0:
        raise HarnessError(f"collectstatic failed:\n{(directory / 'collectstatic.log').read_text()[-3000:]}")
    timings["migrate + seed + collectstatic"] = time.monotonic() - moment

    moment = time.monotonic()
    daphnes: dict[str, Daphne] = {}
    for app in apps:
        app_env = {**env, "DAPHNE_BIND": app.address}
        command = unit_command("consult-daphne@.service", **{"${DAPHNE_BIND}": app.address, "%i": str(DAPHNE_PORT)})
        daphnes[app.name] = Daphne(app, command, app_env, directory / f"{app.name}-daphne.log")
        daphnes[app.name].start()
        worker = unit_command("consult-worker.service", **{"%H": app.name})
        app.popen(worker, directory / f"{app.name}-worker.log", env=app_env, cwd=ROOT)
    for daphne in daphnes.values():
        daphne.wait()
    timings["daphnes up"] = time.monotonic() - moment

    # The balancer: deploy/'s sysctls and site, with this run's addresses and a certificate of its own.
    run(
        "ip",
        "netns",
        "exec",
        balancer.namespace,
        "sysctl",
        "-q",
        "-p",
        str(DEPLOY / "sysctl" / "60-consult-balancer.conf"),
    )
    nginx_dir = directory / "nginx"
    nginx_dir.mkdir()
    certificate, key = self_signed_certificate(nginx_dir, balancer.address)
    servers = "\n    ".join(
        f"server {app.address}:{DAPHNE_PORT} max_fails=1 fail_timeout={FAIL_TIMEOUT}s;" for app in apps
    )
    site = render_site(
        {
            "SERVER_NAME": balancer.address,
            "TLS_CERTIFICATE": str(certificate),
            "TLS_CERTIFICATE_KEY": str(key),
            "STATIC_ROOT": str(ROOT / "staticfiles"),
            "APP_SERVERS": servers,
        },
        nginx_dir,
    )
    conf = nginx_main_conf(nginx_dir, site)
    checked = subprocess.run([str(NGINX), "-t", "-c", str(conf)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise HarnessError(f"nginx -t: {checked.stderr}")
    nginx_log = nginx_dir / "nginx.out"
    nginx = balancer.popen([str(NGINX), "-c", str(conf), "-g", "daemon off;"], nginx_log)
    wait_for_tcp(balancer.address, 443, "nginx", 20, nginx, nginx_log)
    timings["cluster up"] = time.monotonic() - started
    return Cluster(
        network=network,
        balancer=balancer,
        apps=apps,
        postgres=postgres,
        base=f"https://{balancer.address}",
        certificate=certificate,
        access_log=nginx_dir / "consult.access.log",
        bucket=bucket,
        s3_endpoint=s3_endpoint,
        sms=sms,
        timings=timings,
        daphnes=daphnes,
        redis_hosts=redis_hosts,
        sentinels=sentinels,
    )


# --- reading the balancer's access log ---------------------------------------------------------

LOG_LINE = re.compile(
    r'^(?P<client>\S+) \[[^\]]+\] (?P<msec>[\d.]+) "(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) \d+ '
    r"rt=(?P<rt>[\d.]+) upstream=(?P<upstream>.*?) ustatus=(?P<ustatus>.*?) urt=(?P<urt>.*)$"
)


@dataclass
class Logged:
    client: str
    ended: float
    started: float
    method: str
    path: str
    status: int
    upstream: str
    ustatus: str


def access_log(cluster: Cluster) -> list[Logged]:
    entries = []
    for line in cluster.access_log.read_text().splitlines():
        match = LOG_LINE.match(line)
        assert match, f"a line the test cannot read: {line}"
        ended = float(match["msec"])
        entries.append(
            Logged(
                client=match["client"],
                ended=ended,
                started=ended - float(match["rt"]),
                method=match["method"],
                path=match["path"],
                status=int(match["status"]),
                upstream=match["upstream"],
                ustatus=match["ustatus"],
            )
        )
    return entries

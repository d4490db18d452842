"""One app host against two, behind the balancer, in the same run: the hosts of the cluster test
(tests/hosts.py, built by tests/cluster_hosts.py's `start_cluster`: nginx, two app hosts
with daphne and a Celery worker, PostgreSQL, Redis behind Sentinel, S3), the balancer first
routing to app1 alone, then to both (the other host's `server` line marked `down`, nginx reloaded).

For each: chat at saturation (bench/chat.py's clients: CHAT_CASES resident/doctor pairs over TLS
through the balancer, each sending its next message once the last is acknowledged; messages
persisted and delivered to the other side per second), then claims (CLAIMERS professionals, each
POSTing /api/v1/queue/claim/ through the balancer as fast as answers come, on one queue of waiting
cases; claims per second, the median, and any case claimed twice), in BENCH_CLUSTER_ROUNDS
alternating rounds (medians reported, each round shown). Every host is a network
namespace of this one machine: two app hosts share its cores with the clients, the balancer and
the database, so "two" measures what the software allows, not what a second machine would add.

Needs root, iproute2, nginx, Debian's PostgreSQL 15, redis-server and moto (as the cluster test);
`make bench` runs it last and says why when it cannot. Alone:
`sudo .venv/bin/python -m bench.cluster`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

if TYPE_CHECKING:
    from tests.cluster_hosts import Cluster
    from tests.hosts import Host

CLAIMERS = int(os.environ.get("BENCH_CLAIMERS", "16"))
CLAIM_QUEUE = int(os.environ.get("BENCH_CLUSTER_QUEUE", "10000"))  # enough for both runs
CLAIM_SECONDS = float(os.environ.get("BENCH_CLUSTER_CLAIM_SECONDS", "8"))
# One host, two hosts, one, two...: on a machine shared with other work, what else runs drifts;
# alternating and taking the median keeps the drift out of the ratio.
ROUNDS = int(os.environ.get("BENCH_CLUSTER_ROUNDS", "2"))
UNLIMITED = str(10**9)  # the per-person limits are not what is measured here
CLAIM_SKILLS = "bench-claims-"  # the claim queue's services


def why_not() -> str | None:
    """Why the hosts cannot be built here, or None."""
    from tests.deploy import NGINX
    from tests.hosts import IP, PG_BIN

    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for path, package in ((Path(IP), "iproute2"), (NGINX, "nginx"), (PG_BIN / "initdb", "postgresql-15")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing ({package})"
    if not shutil.which("redis-server"):
        return "redis-server is missing"
    return None


# --- on the first app host: the data --------------------------------------------------------------


def seed() -> None:
    """Run on an app host (its environment names the cluster's database): bench/chat.py's cases, and
    CLAIMERS professionals with tokens over a queue of CLAIM_QUEUE waiting cases. Prints them as JSON."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from knox.models import AuthToken

    from bench import chat
    from bench.claims import SKILLS, _seed
    from consult.models import Kind, Professional, Role, Skill, User

    cases, _url = chat.seed()
    password = make_password(None)
    skills = [
        Skill.objects.create(
            kind=Kind.MEDICAL, code=f"{CLAIM_SKILLS}{n}", name_zh="测试", name_en="Bench", office_zh="办",
            office_en="Office", office_phone="0", response_hours=24,
        )
        for n in range(SKILLS)
    ]
    resident = User.objects.create(phone="13799999999", name="居民", role=Role.RESIDENT, password=password)
    tokens = []
    for n in range(CLAIMERS):
        user = User.objects.create(phone=f"1379{n:07d}", name=f"医生{n}", role=Role.DOCTOR, password=password)
        professional = Professional.objects.create(
            user=user, kind=Kind.MEDICAL, organisation="医院", city="杭州", capacity=30_000, on_duty=True
        )
        professional.skills.add(skills[n % SKILLS], skills[(n + 1) % SKILLS])
        tokens.append(AuthToken.objects.create(user)[1])
    _seed(skills, resident)
    print(json.dumps({"chat": cases[: chat.CHAT_CASES], "claimers": tokens}))


# --- from the machine: the balancer, the load ---------------------------------------------------------


def route(cluster: Cluster, directory: Path, apps: list[Host]) -> None:
    """The balancer sends requests and sockets to `apps` only: the others' `server` lines marked down,
    nginx reloaded (SIGHUP; new workers take the new upstreams)."""
    from tests.cluster_hosts import DAPHNE_PORT

    nginx = directory / "nginx"
    site = nginx / "site.conf"
    text = site.read_text()
    for app in cluster.apps:
        line = re.compile(rf"(server {re.escape(app.address)}:{DAPHNE_PORT} [^;]*?)( down)?;")
        text = line.sub(r"\1;" if app in apps else r"\1 down;", text)
    site.write_text(text)
    os.kill(int((nginx / "nginx.pid").read_text()), signal.SIGHUP)
    time.sleep(2)  # the old workers finish; the new ones read the site


def served_by(cluster: Cluster, since: float, path: str) -> dict[str, int]:
    from tests.cluster_hosts import access_log

    found = Counter(cluster.app_of(e.upstream) for e in access_log(cluster) if e.started >= since and path in e.path)
    return dict(sorted(found.items()))


async def chat_rate(cluster: Cluster, cases: list[list[str]]) -> dict[str, Any]:
    from bench import chat

    tls = cluster.tls()
    base = f"wss://{cluster.balancer.address}"
    opened = []
    for reference, resident, doctor in cases:
        # One after the other: with two hosts, round robin puts a case's two sides on different ones.
        a = await chat.open_socket(f"{base}/ws/cases/{reference}/", resident, tls=tls)
        b = await chat.open_socket(f"{base}/ws/cases/{reference}/", doctor, tls=tls)
        opened.append((a, b))
    await asyncio.sleep(1)
    # This process's own CPU meanwhile: near one core, the clients (not the hosts) set the rate.
    cpu, wall = time.process_time(), time.monotonic()
    stats = await chat.conversation(opened, None)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    for pair in opened:
        for ws in pair:
            await ws.close()
    await asyncio.sleep(1)
    return {
        "rate": chat.rate(stats),
        "p50": chat.percentile(stats, 0.5),
        "errors": len(stats.errors),
        "error kinds": sorted(set(stats.errors))[:5],
        "client cpu": cpu / wall,
        "load": os.getloadavg()[0],
    }


def claim_rate(cluster: Cluster, tokens: list[str]) -> dict[str, Any]:
    """Every claimer POSTs as fast as answers come until CLAIM_SECONDS pass (or the queue is empty)."""
    barrier = threading.Barrier(len(tokens) + 1)
    lock = threading.Lock()
    claimed: list[str] = []
    durations: list[float] = []
    failures: Counter[str] = Counter()
    deadline = [0.0]

    def work(token: str) -> None:
        http = cluster.session()
        http.headers["Authorization"] = f"Token {token}"
        url = f"{cluster.base}/api/v1/queue/claim/"
        mine, times = [], []
        http.get(f"{cluster.base}/api/v1/services/", timeout=30)  # the TLS session open before the start
        barrier.wait(timeout=60)
        while time.monotonic() < deadline[0]:
            started = time.monotonic()
            try:
                answer = http.post(url, timeout=30)
            except Exception as error:
                with lock:
                    failures[type(error).__name__] += 1
                continue
            if answer.status_code == 204:
                break
            if answer.status_code != 200:
                with lock:
                    failures[str(answer.status_code)] += 1
                continue
            times.append(time.monotonic() - started)
            mine.append(answer.json()["reference"])
        with lock:
            claimed.extend(mine)
            durations.extend(times)

    threads = [threading.Thread(target=work, args=(token,)) for token in tokens]
    deadline[0] = time.monotonic() + 3600
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started, cpu = time.monotonic(), time.process_time()
    deadline[0] = started + CLAIM_SECONDS
    for thread in threads:
        thread.join()
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    return {
        "client cpu": cpu / wall,
        "load": os.getloadavg()[0],
        "rate": len(claimed) / wall,
        "claims": len(claimed),
        "p50": statistics.median(durations) if durations else float("nan"),
        "twice": sum(n - 1 for n in Counter(claimed).values() if n > 1),
        "failures": dict(failures),
    }


def claimed_in_database(cluster: Cluster) -> tuple[int, int]:
    """Cases of the claim queue that are active, and timeline lines saying a case was claimed more than once."""
    import psycopg

    queue = "select c.id from consult_case c join consult_skill s on s.id = c.skill_id where s.code like %s"
    with psycopg.connect(cluster.postgres.url.replace("postgres://", "postgresql://")) as db:
        row = db.execute(
            f"select count(*) from consult_case where status = 'active' and id in ({queue})",  # noqa: S608
            [f"{CLAIM_SKILLS}%"],
        ).fetchone()
        active = int(row[0]) if row else 0
        row = db.execute(
            f"select count(*) from (select case_id from consult_caseevent where verb = 'claimed' "  # noqa: S608
            f"and case_id in ({queue}) group by case_id having count(*) > 1) twice",
            [f"{CLAIM_SKILLS}%"],
        ).fetchone()
        return active, int(row[0]) if row else 0


def main() -> None:
    reason = why_not()
    if reason:
        print(f"{'one app host against two (cluster)':<44} skipped: {reason}")
        return
    from tests.cluster import HarnessError
    from tests.cluster_hosts import start_cluster

    directory = Path(tempfile.mkdtemp(prefix="consult-cluster-bench-"))
    cleanup: list[Callable[[], None]] = []
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    started = time.monotonic()
    try:
        cluster = start_cluster(
            directory, cleanup, CHAT_MESSAGES_PER_10S=UNLIMITED, CHAT_FRAMES_PER_10S=UNLIMITED, LOG_LEVEL="ERROR"
        )
        built = time.monotonic() - started
        app1 = cluster.apps[0]
        seeded = app1.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "bench.cluster", "seed"],
            env={**cluster.daphnes[app1.name].env, "BENCH_CLAIM_QUEUE": str(CLAIM_QUEUE)},
            cwd=ROOT,
            timeout=600,
        )
        data = json.loads(seeded.stdout.strip().splitlines()[-1])
        for _round in range(ROUNDS):
            for count in (1, 2):
                route(cluster, directory, cluster.apps[:count])
                moment = time.time()
                result: dict[str, Any] = {"chat": asyncio.run(chat_rate(cluster, data["chat"]))}
                result["chat served by"] = served_by(cluster, moment, "/ws/cases/")
                moment = time.time()
                result["claims"] = claim_rate(cluster, data["claimers"])
                result["claims served by"] = served_by(cluster, moment, "/api/v1/queue/claim/")
                results[count].append(result)
        active, twice = claimed_in_database(cluster)
    except HarnessError as error:
        print(f"{'one app host against two (cluster)':<44} failed to build the hosts: {error}")
        return
    finally:
        for stop in reversed(cleanup):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(directory, ignore_errors=True)
    report(results, built, active, twice, time.monotonic() - started)


def report(results: dict[int, list[dict[str, Any]]], built: float, active: int, twice: int, seconds: float) -> None:
    def median(count: int, part: str, key: str) -> float:
        return statistics.median(r[part][key] for r in results[count])

    print(f"{'cluster (hosts on one machine, via nginx)':<44} {'1 app host':>12}  {'2 app hosts':>12}  {'2 / 1':>7}"
          f"   (median of {ROUNDS} alternating rounds)")
    for label, part, key, scale in (
        ("  chat messages/s at saturation", "chat", "rate", 1),
        ("  chat p50 ms at saturation", "chat", "p50", 1000),
        (f"  claims/s ({CLAIMERS} claimers)", "claims", "rate", 1),
        ("  claim p50 ms", "claims", "p50", 1000),
    ):
        one, two = median(1, part, key), median(2, part, key)
        ratio = f"x{two / one:6.2f}" if key == "rate" else ""
        rounds = " / ".join(f"{a[part][key] * scale:.0f}:{b[part][key] * scale:.0f}"
                            for a, b in zip(results[1], results[2], strict=True))
        print(f"{label:<44} {one * scale:12.1f}  {two * scale:12.1f}  {ratio:>7}   rounds {rounds}")
    for count in (1, 2):
        for r in results[count]:
            print(f"  {count} host(s): sockets on {r['chat served by']}, claims on {r['claims served by']}, "
                  f"chat errors {r['chat']['errors']} {r['chat']['error kinds']}, "
                  f"claim failures {r['claims']['failures']}")
            # What else the machine was doing: its load, and the share of a core the clients used.
            print(f"    load average {r['chat']['load']:.1f} / {r['claims']['load']:.1f}, clients' CPU "
                  f"{r['chat']['client cpu']:.0%} / {r['claims']['client cpu']:.0%} of a core (chat / claims), "
                  f"{os.cpu_count()} cores")
    every = [r["claims"] for count in (1, 2) for r in results[count]]
    claims = sum(c["claims"] for c in every)
    doubles = sum(c["twice"] for c in every) + twice + abs(active - claims)
    print(f"  {claims} claims, {doubles} double claims; hosts built in {built:.0f} s, {seconds:.0f} s in all")


if __name__ == "__main__":
    if sys.argv[1:] == ["seed"]:
        seed()
    else:
        import django

        django.setup()
        main()

"""Chat on the production shape: two daphnes (`DEBUG` off) on the Redis channel layer (our own
redis-server) and PostgreSQL, driven from this process by clients that speak the room's protocol.
Every figure is set against a bare Channels consumer that only broadcasts (bench/bare_asgi.py),
served by two daphnes on the same layer and measured in the same run.

- saturation: 60 cases, 120 sockets (resident and doctor of each case, on different daphnes), each
  sending its next message as soon as the last is acknowledged; messages persisted and delivered
  to the other side per second.
- latency at half that load: every socket paced so that all together offer half the saturation
  rate; send-to-receive p50 and p99 at the other side.
- connect storm: 2,000 sockets (1,000 cases, resident and doctor) opened over 10 s.
- reconnect storm: Redis restarted, then every socket drops and comes back at once with room.js's
  jittered backoff; seconds until all are connected and caught up again (`BENCH_CHAT_TIMELINE=1`:
  and per second, handshakes tried, opened, synced and failed; `BENCH_PYSPY=/path/to/py-spy`: the
  first daphne's stacks during it, idle ones included, written under the run's folder).

Run with `make bench`, or alone (PostgreSQL needed; the database is created if missing):
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/consult_bench .venv/bin/python -m bench.chat`
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

CASES = 1000  # for the connect storm; the first CHAT_CASES of them chat
CHAT_CASES = int(os.environ.get("BENCH_CHAT_CASES", "60"))
DOCTORS = 20
WARMUP, WINDOW = 2.0, float(os.environ.get("BENCH_CHAT_SECONDS", "8"))
STORM_SOCKETS, STORM_SECONDS = 2 * CASES, 10.0
STORMS = os.environ.get("BENCH_CHAT_STORMS", "1") != "0"  # 0: the chat figures only
UNLIMITED = str(10**9)  # the per-socket rate limits are not what is measured here


def seed() -> tuple[list[tuple[str, str, str]], str]:
    """CASES active cases, each with its resident; DOCTORS doctors. Returns (reference, resident
    token, doctor token) per case and the database URL for the servers."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from knox.models import AuthToken

    from consult.models import Case, Kind, Professional, Role, Skill, Status, User
    from tests.live import database_url

    call_command("migrate", verbosity=0)
    Case.objects.filter(reference__startswith="CH").delete()
    User.objects.filter(phone__startswith="1770").delete()
    password = make_password("bench-password-123")
    skill, _ = Skill.objects.get_or_create(
        code="bench-chat",
        defaults=dict(kind=Kind.MEDICAL, name_zh="测试", name_en="Bench", office_zh="办", office_en="Office",
                      office_phone="0", response_hours=24),
    )
    doctors = []
    for n in range(DOCTORS):
        user = User.objects.create(phone=f"17700{n:06d}", name=f"医生{n}", role=Role.DOCTOR, password=password)
        doctor = Professional.objects.create(
            user=user, kind=Kind.MEDICAL, organisation="医院", city="杭州", capacity=10_000, on_duty=True
        )
        doctor.skills.add(skill)
        doctors.append(doctor)
    residents = User.objects.bulk_create(
        User(phone=f"17701{n:06d}", name=f"居民{n}", role=Role.RESIDENT, password=password) for n in range(CASES)
    )
    now = timezone.now()
    cases = Case.objects.bulk_create(
        Case(reference=f"CH{n:06d}", kind=Kind.MEDICAL, skill=skill, resident=resident,
             assignee=doctors[n % DOCTORS], status=Status.ACTIVE, description="bench", submitted_at=now,
             assigned_at=now, accepted_at=now, first_response_at=now)
        for n, resident in enumerate(residents)
    )
    doctor_tokens = [AuthToken.objects.create(d.user)[1] for d in doctors]
    result = [
        (case.reference, AuthToken.objects.create(resident)[1], doctor_tokens[n % DOCTORS])
        for n, (case, resident) in enumerate(zip(cases, residents, strict=True))
    ]
    url = database_url()
    connection.close()
    return result, url


# --- clients ---------------------------------------------------------------------------------------


@dataclass
class Stats:
    sent_at: dict[str, float] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (received at, latency)
    errors: list[str] = field(default_factory=list)


async def open_socket(url: str, token: str | None, tls: ssl.SSLContext | None = None) -> Any:
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Token {token}"} if token else {}
    # wss through a balancer (bench/cluster.py) with its own certificate authority.
    options: dict[str, Any] = {"ssl": tls} if tls else {}
    return await connect(url, additional_headers=headers, ping_interval=None, proxy=None, open_timeout=30,
                         max_queue=None, **options)


async def talker(ws: Any, name: str, stats: Stats, stop: asyncio.Event, interval: float | None) -> None:
    """Sends messages (the next once the last is acknowledged, or every `interval` seconds on
    average) and records when the other side's messages arrive."""
    acked = asyncio.Event()
    acked.set()

    async def reader() -> None:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "message":
                client_id = frame["message"].get("client_id") or ""
                if client_id and not client_id.startswith(name + "-") and client_id in stats.sent_at:
                    now = time.monotonic()
                    stats.latencies.append((now, now - stats.sent_at[client_id]))
            elif kind == "ack":
                acked.set()
            elif kind == "error":
                stats.errors.append(frame.get("code", "?") + ": " + frame.get("message", ""))
                acked.set()

    task = asyncio.create_task(reader())
    n = 0
    if interval:
        await asyncio.sleep(random.random() * interval)
    try:
        while not stop.is_set():
            if interval is None:
                await acked.wait()
            acked.clear()
            n += 1
            client_id = f"{name}-{n}"
            stats.sent_at[client_id] = time.monotonic()
            await ws.send(json.dumps({"type": "message", "client_id": client_id, "body": f"第{n}条消息"}))
            if interval:
                await asyncio.sleep(random.expovariate(1 / interval))
    finally:
        task.cancel()


async def conversation(pairs: list[tuple[Any, Any]], offered: float | None) -> Stats:
    """All pairs talk for WARMUP + WINDOW seconds; `offered` messages per second in all, or None
    for as fast as acknowledgements come back."""
    stats = Stats()
    stop = asyncio.Event()
    sockets = [ws for pair in pairs for ws in pair]
    interval = len(sockets) / offered if offered else None
    # Fresh client ids every time: a known one is a retry, stored once and not broadcast again.
    run = uuid.uuid4().hex[:8]
    tasks = [asyncio.create_task(talker(ws, f"{run}{i}", stats, stop, interval)) for i, ws in enumerate(sockets)]
    started = time.monotonic()
    await asyncio.sleep(WARMUP + WINDOW)
    stop.set()
    await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    window = (started + WARMUP, started + WARMUP + WINDOW)
    stats.latencies = [(at, lat) for at, lat in stats.latencies if window[0] <= at < window[1]]
    return stats


def rate(stats: Stats) -> float:
    return len(stats.latencies) / WINDOW


def percentile(stats: Stats, p: float) -> float:
    values = sorted(lat for _at, lat in stats.latencies)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * len(values)))]


async def chat_figures(urls: list[str], cases: list[tuple[str, str, str]], app: bool) -> dict[str, Any]:
    async def pairs() -> list[tuple[Any, Any]]:
        opened = []
        for n, (reference, resident, doctor) in enumerate(cases[:CHAT_CASES]):
            path = f"/ws/cases/{reference}/" if app else f"/bare/{reference}/"
            a = await open_socket(urls[n % 2] + path, resident if app else None)
            b = await open_socket(urls[(n + 1) % 2] + path, doctor if app else None)
            opened.append((a, b))
        await asyncio.sleep(1)
        return opened

    async def close(opened: list[tuple[Any, Any]]) -> None:
        for pair in opened:
            for ws in pair:
                await ws.close()
        await asyncio.sleep(1)

    # Fresh sockets for each phase: nothing left over from the saturated one.
    opened = await pairs()
    saturated = await conversation(opened, None)
    await close(opened)
    opened = await pairs()
    half = await conversation(opened, rate(saturated) / 2)
    await close(opened)
    return {
        "rate": rate(saturated), "errors": len(saturated.errors + half.errors),
        "error_kinds": sorted(set(saturated.errors + half.errors))[:5],
        "p50": percentile(half, 0.5), "p99": percentile(half, 0.99), "half_rate": rate(half),
    }


async def storm(urls: list[str], cases: list[tuple[str, str, str]], app: bool) -> tuple[list[Any], dict[str, Any]]:
    """Open STORM_SOCKETS sockets evenly over STORM_SECONDS; count the handshakes done in time."""
    started = time.monotonic()
    failures: list[str] = []
    done_at: list[float] = []

    async def one(i: int) -> Any:
        await asyncio.sleep(i * STORM_SECONDS / STORM_SOCKETS)
        reference, resident, doctor = cases[i // 2]
        path = f"/ws/cases/{reference}/" if app else f"/bare/{reference}/"
        try:
            ws = await open_socket(urls[i % 2] + path, (resident if i % 2 == 0 else doctor) if app else None)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}"[:120])
            return None
        done_at.append(time.monotonic() - started)
        return ws

    sockets = await asyncio.gather(*(one(i) for i in range(STORM_SOCKETS)))
    in_time = sum(1 for at in done_at if at <= STORM_SECONDS + 1)
    return [ws for ws in sockets if ws is not None], {
        "connected": len(done_at), "in_time": in_time, "failures": len(failures),
        "last": max(done_at) if done_at else float("nan"),
        "kinds": sorted({f for f in failures})[:5],
    }


async def reconnect_storm(urls: list[str], cases: list[tuple[str, str, str]], sockets: list[Any], redis: Any) -> dict:
    """Redis restarts; then every socket is dropped and comes back with room.js's backoff (full
    jitter under a cap doubling from 1 s), saying hello; seconds until all are caught up."""
    await asyncio.to_thread(redis.stop)
    await asyncio.sleep(1)
    await asyncio.to_thread(redis.start)
    for ws in sockets:
        ws.transport.abort()
    started = time.monotonic()
    failures: list[str] = []
    # What happened when, for the timeline: (seconds since the drop, event, what).
    timeline: list[tuple[float, str, str]] = []

    async def back(i: int) -> Any:
        reference, resident, doctor = cases[i // 2]
        attempt = 0
        while time.monotonic() - started < 60:
            await asyncio.sleep(random.random() * min(30.0, 2.0**attempt))
            attempt += 1
            tried = time.monotonic() - started
            timeline.append((tried, "tried", ""))
            try:
                ws = await open_socket(urls[i % 2] + f"/ws/cases/{reference}/", resident if i % 2 == 0 else doctor)
                timeline.append((time.monotonic() - started, "open", f"{time.monotonic() - started - tried:.1f}"))
                await ws.send(json.dumps({"type": "hello", "last_seq": 0}))
                async for raw in ws:
                    if json.loads(raw).get("type") == "synced":
                        timeline.append((time.monotonic() - started, "synced", ""))
                        return ws
                raise ConnectionError(f"closed before synced ({ws.close_code})")
            except Exception as error:
                failures.append(type(error).__name__)
                timeline.append((time.monotonic() - started, "failed", f"{type(error).__name__}: {error}"[:80]))
        return None

    back_sockets = await asyncio.gather(*(back(i) for i in range(len(sockets))))
    seconds = time.monotonic() - started
    for ws in back_sockets:
        if ws is not None:
            await ws.close()
    return {"seconds": seconds, "back": sum(1 for ws in back_sockets if ws is not None), "retries": len(failures),
            "timeline": timeline}


def print_timeline(timeline: list[tuple[float, str, str]]) -> None:
    """Per second of a reconnect storm: handshakes tried, opened, synced and failed (and why)."""
    last = int(max((at for at, _event, _what in timeline), default=0.0)) + 1
    print(f"  {'second':>8} {'tried':>7} {'open':>7} {'synced':>7} {'failed':>7}  slowest open (s)")
    for second in range(last):
        events = [(e, w) for at, e, w in timeline if second <= at < second + 1]
        counts = {kind: sum(1 for e, _w in events if e == kind) for kind in ("tried", "open", "synced", "failed")}
        slowest = max((float(w) for e, w in events if e == "open"), default=0.0)
        print(f"  {second:>8} {counts['tried']:>7} {counts['open']:>7} {counts['synced']:>7} {counts['failed']:>7}  "
              f"{slowest:.1f}")
    kinds: dict[str, int] = {}
    for _at, event, what in timeline:
        if event == "failed":
            kinds[what] = kinds.get(what, 0) + 1
    for what, count in sorted(kinds.items(), key=lambda item: -item[1])[:8]:
        print(f"  failed {count:>5}: {what}")


def pid_of(daphne: Any) -> int:
    assert daphne.process is not None
    return int(daphne.process.pid)


def main() -> None:
    from bench.pages import _ensure_database
    from tests.cluster import DaphneProcess, RedisServer, production_env

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"{'chat on two daphnes':<44} skipped: needs PostgreSQL in DATABASE_URL")
        return
    _ensure_database(url)
    cases, database = seed()
    directory = Path(tempfile.mkdtemp(prefix="consult-chat-bench-"))
    redis = RedisServer(directory)
    redis.start()
    results: dict[str, Any] = {}
    try:
        for kind, app in (("bare", False), ("app", True)):
            env = production_env(
                redis.url, database, CHAT_MESSAGES_PER_10S=UNLIMITED, CHAT_FRAMES_PER_10S=UNLIMITED,
                LOG_LEVEL="ERROR",
            )
            daphnes = []
            for n in range(2):
                daphne = DaphneProcess(env, directory, f"{kind}-{n}")
                if not app:
                    daphne.asgi = "bench.bare_asgi:application"
                daphnes.append(daphne.start())
            try:
                for daphne in daphnes:
                    daphne.wait()
                urls = [f"ws://127.0.0.1:{d.port}" for d in daphnes]
                results[kind] = asyncio.run(chat_figures(urls, cases, app))

                async def storms(
                    urls: list[str] = urls, app: bool = app, first: int = pid_of(daphnes[0])
                ) -> dict[str, Any]:
                    sockets, figures = await storm(urls, cases, app)
                    if app:
                        spy = None
                        if os.environ.get("BENCH_PYSPY"):  # what the first daphne does in the storm
                            out = directory / "reconnect.folded"
                            print("py-spy:", out)
                            spy = await asyncio.create_subprocess_exec(
                                os.environ["BENCH_PYSPY"], "record", "--idle", "-d", "20", "-r", "100", "-f",
                                "raw", "-o", str(out), "-p", str(first), stdout=asyncio.subprocess.DEVNULL,
                                stderr=asyncio.subprocess.DEVNULL,
                            )
                            await asyncio.sleep(1.0)
                        figures["reconnect"] = await reconnect_storm(urls, cases, sockets, redis)
                        if spy is not None:
                            await spy.wait()
                    else:
                        for ws in sockets:
                            await ws.close()
                    return figures

                if STORMS:
                    results[kind]["storm"] = asyncio.run(storms())
            finally:
                for daphne in daphnes:
                    daphne.stop()
    finally:
        redis.stop()
    report(results)


def report(results: dict[str, Any]) -> None:
    app, bare = results["app"], results["bare"]
    print(f"{'chat, 2 daphnes + Redis + PostgreSQL':<44} {'app':>12}  {'bare broadcast consumer':<30} {'bare':>12}")
    ratio = app["rate"] / bare["rate"]
    print(f"{'  messages/s at saturation':<44} {app['rate']:12.1f}  {'':<30} {bare['rate']:12.1f}  x{ratio:6.2f}")
    for key, label in (("p50", "p50 ms at half load"), ("p99", "p99 ms at half load")):
        print(f"  {label:<42} {app[key] * 1000:12.1f}  {'':<30} {bare[key] * 1000:12.1f}  x{app[key] / bare[key]:6.2f}")
    print(f"  {'(half load offered, delivered/s)':<42} {app['half_rate']:12.1f}  {'':<30} {bare['half_rate']:12.1f}")
    if "storm" in app:
        a, b = app["storm"], bare["storm"]
        print(f"  {'connect storm: of 2,000 in 10 s (failed)':<42} {a['in_time']:>7} ({a['failures']})  {'':<30} "
              f"{b['in_time']:>7} ({b['failures']})  last at {a['last']:.1f} s / {b['last']:.1f} s")
        r = a["reconnect"]
        print(f"  {'reconnect storm after a Redis restart':<42} {r['back']:>7} back in {r['seconds']:.1f} s "
              f"({r['retries']} retried handshakes)")
        print("  storm failures:", a["kinds"], b["kinds"])
        if os.environ.get("BENCH_CHAT_TIMELINE"):
            print_timeline(r["timeline"])
    if app["errors"]:
        print(f"  errors during the chat: {app['errors']}", app.get("error_kinds"))


if __name__ == "__main__":
    main()

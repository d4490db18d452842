"""Daphne CPU per websocket handshake: the case room (`/ws/cases/<ref>/` with an API token) against
the bare broadcast-only consumer (bench/bare_asgi.py), each on one daphne of its own in the
production shape (`DEBUG` off, our own redis-server, PostgreSQL), measured in the same run.

For each kind: N sockets are opened, 16 at a time (each waits for its handshake and, for the room,
its first presence frame), and the daphne process's CPU (utime + stime from /proc/<pid>/stat) is
read before and after; the figure is CPU milliseconds per handshake. Then, on the room, each socket
says hello (last_seq 0) and waits for synced, as room.js does on every (re)connect; last, all are
closed: CPU per hello and per close, the other two parts of a reconnect storm. A first round warms
each server (imports, connections) and is not counted.

`DATABASE_URL=postgres://postgres@127.0.0.1:5432/consult_bench .venv/bin/python -m bench.handshake`
(`BENCH_HANDSHAKES`, default 400, sockets per round; `BENCH_HANDSHAKE_ROUNDS`, default 3;
`BENCH_PYSPY=/path/to/py-spy`: the app server's rounds are also sampled, folded stacks written to
a file under the run's folder, whose path is printed).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

SOCKETS = int(os.environ.get("BENCH_HANDSHAKES", "400"))
ROUNDS = int(os.environ.get("BENCH_HANDSHAKE_ROUNDS", "3"))
AT_ONCE = 16
TICKS = os.sysconf("SC_CLK_TCK")
PYSPY = os.environ.get("BENCH_PYSPY", "")
BASELINE = os.environ.get("BENCH_BASELINE_TREE", "")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/<pid>/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def round_of(url: str, cases: list[tuple[str, str, str]], app: bool, pid: int, count: int) -> dict[str, float]:
    import json

    from bench.chat import open_socket

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    opened: list[Any] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            reference, resident, doctor = cases[(i // 2) % len(cases)]
            try:
                if app:
                    ws = await open_socket(f"{url}/ws/cases/{reference}/", resident if i % 2 == 0 else doctor)
                    while json.loads(await ws.recv()).get("type") != "presence":
                        pass
                else:
                    ws = await open_socket(f"{url}/bare/{reference}/", None)
            except Exception:
                failures += 1
                continue
            opened.append(ws)

    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
    after, seconds = cpu_seconds(pid), time.monotonic() - started
    figures = {"cpu_ms": (after - before) * 1000 / max(1, len(opened)), "per_s": len(opened) / seconds,
               "failures": failures}
    await asyncio.sleep(0.5)  # the servers' presence batches may still be settling

    if app:
        # What a client says first on every (re)connect: hello, answered by synced.
        pending = list(opened)

        async def greeter() -> None:
            while pending:
                ws = pending.pop()
                await ws.send(json.dumps({"type": "hello", "last_seq": 0}))
                while json.loads(await ws.recv()).get("type") != "synced":
                    pass

        before = cpu_seconds(pid)
        await asyncio.gather(*(greeter() for _ in range(AT_ONCE)))
        figures["hello_ms"] = (cpu_seconds(pid) - before) * 1000 / max(1, len(opened))
        await asyncio.sleep(0.5)

    # Closing: the server leaves the groups and forgets the presence rows (read once it settled).
    before = cpu_seconds(pid)
    await asyncio.gather(*(ws.close() for ws in opened))
    await asyncio.sleep(1.5)
    figures["close_ms"] = (cpu_seconds(pid) - before) * 1000 / max(1, len(opened))
    return figures


def main() -> None:
    from bench.chat import UNLIMITED, seed
    from bench.pages import _ensure_database
    from tests.cluster import DaphneProcess, RedisServer, production_env

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"{'handshake CPU':<44} skipped: needs PostgreSQL in DATABASE_URL")
        return
    _ensure_database(url)
    cases, database = seed()
    directory = Path(tempfile.mkdtemp(prefix="consult-handshake-bench-"))
    redis = RedisServer(directory)
    redis.start()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        env = production_env(redis.url, database, CHAT_MESSAGES_PER_10S=UNLIMITED, CHAT_FRAMES_PER_10S=UNLIMITED,
                             LOG_LEVEL="ERROR")
        daphnes = {}
        for kind in ("bare", "app"):
            daphne = DaphneProcess(env, directory, f"handshake-{kind}")
            if kind == "bare":
                daphne.asgi = "bench.bare_asgi:application"
            daphnes[kind] = daphne.start()
        if BASELINE:
            # The same room from another checkout (e.g. the commit before a change), measured in
            # the same rounds: on a shared machine, A/B in one run is the honest comparison.
            daphne = DaphneProcess({**env, "PYTHONPATH": BASELINE}, directory, "handshake-baseline")
            daphne.cwd = Path(BASELINE)
            daphnes["baseline"] = daphne.start()
        try:
            for daphne in daphnes.values():
                daphne.wait()
            for kind, daphne in daphnes.items():
                assert daphne.process is not None
                asyncio.run(round_of(f"ws://127.0.0.1:{daphne.port}", cases, kind != "bare", daphne.process.pid, 64))
            # Rounds alternate between the two, so that a change of load on the machine touches both.
            for n in range(ROUNDS):
                for kind, daphne in daphnes.items():
                    assert daphne.process is not None
                    spy = None
                    if PYSPY and kind == "app":
                        out = directory / f"app-{n}.folded"
                        print("py-spy:", out)
                        command = [PYSPY, "record", "--gil", "-r", "200", "-f", "raw", "-o", str(out),
                                   "-p", str(daphne.process.pid)]
                        # The tool named by the one running the benchmark.
                        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
                        time.sleep(1.0)
                    figures = asyncio.run(round_of(f"ws://127.0.0.1:{daphne.port}", cases, kind != "bare",
                                                   daphne.process.pid, SOCKETS))
                    results.setdefault(kind, []).append(figures)
                    if spy is not None:
                        spy.send_signal(2)
                        spy.wait(timeout=30)
        finally:
            for daphne in daphnes.values():
                daphne.stop()
    finally:
        redis.stop()
    report(results)


def report(results: dict[str, list[dict[str, float]]]) -> None:
    load = os.getloadavg()
    kinds = [kind for kind in ("app", "baseline", "bare") if kind in results]
    print(f"{'handshake, one daphne each, 16 at a time':<44}" + "".join(f"{k:>10}" for k in kinds)
          + f"   (load {load[0]:.2f})")

    def row(label: str, key: str) -> None:
        cells = [f"{statistics.median(r[key] for r in results[k]):10.2f}" if key in results[k][0] else f"{'-':>10}"
                 for k in kinds]
        print(f"  {label:<42}" + "".join(cells))

    row("daphne CPU ms per handshake (median)", "cpu_ms")
    for kind in kinds:
        print(f"  {'  each round, ' + kind:<42} " + " ".join(f"{r['cpu_ms']:.2f}" for r in results[kind]))
    row("handshakes per second (median)", "per_s")
    row("daphne CPU ms per hello -> synced (median)", "hello_ms")
    row("daphne CPU ms per close (median)", "close_ms")
    failed = sum(r["failures"] for rs in results.values() for r in rs)
    if failed:
        print(f"  failed handshakes: {failed}")


if __name__ == "__main__":
    main()

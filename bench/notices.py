"""Notices through the outbox against a bare task, on one real Celery worker in the same run.

The outbox side writes NOTICES notices in one transaction (notify: one row each) and, at commit,
queues one delivery job per notice; the worker takes each row (queued -> sending), sends it through
the SMS backend (locmem: no provider's network in the figure) and marks it sent. The bare side
queues as many jobs (the same Job base) that each append a byte to a file. Both are timed from the first job queued to
the last one done (polled every 20 ms) and reported in jobs per second; their ratio is what the
outbox costs over Celery itself. The broker is the run's: Redis with REDIS_URL, else the
Redis of production: REDIS_URL, or a
redis-server of its own (tests/cluster.py) when none is set (the filesystem transport of `make run`
polls its folder and would measure only that).

Run with the other benchmarks (`make bench`) or alone: `.venv/bin/python -m bench.notices`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from celery import shared_task

from jobs.base import Job

NOTICES = int(os.environ.get("BENCH_NOTICES", "200"))
CONCURRENCY = int(os.environ.get("BENCH_NOTICE_WORKERS", "2"))
ROOT = Path(__file__).resolve().parent.parent


# A job on the same base as the delivery job (acks_late, its success hook): what is left is the outbox.
@shared_task(base=Job, name="bench.notices.bare")
def bare(path: str) -> None:
    with open(path, "ab") as out:
        out.write(b".")


def _until(done: Callable[[], bool], worker: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def run() -> None:
    from django.conf import settings
    from django.db import transaction

    from consult.celery import app
    from notices.kinds import NoticeKind
    from notices.models import Notice, NoticeStatus
    from notices.services import notify

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix="consult-bench-notices-"))
    own_redis = None
    broker = settings.REDIS_URL
    if not broker:
        from tests.cluster import RedisServer

        own_redis = RedisServer(scratch)
        own_redis.start()
        broker = own_redis.url
        app.conf.broker_url = broker
        app.conf.broker_transport_options = {}
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    log = scratch / "worker.log"
    env = {
        **os.environ, "CELERY_QUEUE": queue, "CELERY_BROKER_URL": broker, "SMS_BACKEND": "locmem",
        "NOTICE_QUIET_START": "0", "NOTICE_QUIET_END": "0", "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "celery", "-A", "consult", "worker", "--loglevel", "WARNING", "--without-mingle",
         "--without-gossip", "--concurrency", str(CONCURRENCY), "--include", "bench.notices",
         "--hostname", f"{queue}@%h"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        warm = scratch / "warm"
        bare.apply_async(args=[str(warm)])
        _until(warm.exists, worker, log)

        marks = scratch / "bare"
        start = time.perf_counter()
        for _ in range(NOTICES):
            bare.apply_async(args=[str(marks)])
        _until(lambda: marks.exists() and marks.stat().st_size >= NOTICES, worker, log)
        bare_seconds = time.perf_counter() - start

        start = time.perf_counter()
        with transaction.atomic():
            ids = [
                notify(phone=f"139{n:08d}", kind=NoticeKind.VERIFICATION_CODE, params={"code": f"{n:06d}"}).pk
                for n in range(NOTICES)
            ]
        sent = Notice.objects.filter(pk__in=ids, status=NoticeStatus.SENT)
        _until(lambda: sent.count() >= NOTICES, worker, log)
        outbox_seconds = time.perf_counter() - start
        doubles = Notice.objects.filter(pk__in=ids).exclude(attempts=1).count()
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
        if own_redis is not None:
            own_redis.stop()
        else:
            import redis

            redis.Redis.from_url(broker).delete(queue, f"_kombu.binding.{queue}")
    outbox_rate, bare_rate = NOTICES / outbox_seconds, NOTICES / bare_seconds
    print(
        f"{'notices through the outbox (Redis broker)':<44} {outbox_rate:9.0f} /s   {'bare job':<30} "
        f"{bare_rate:9.0f} /s   x{bare_rate / outbox_rate:7.2f} slower  ({NOTICES} each, {CONCURRENCY} worker "
        f"processes, notices sent more than once: {doubles})"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    import tempfile as _tempfile

    _tmp = _tempfile.mkdtemp(prefix="consult-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from bench.pages import _ensure_database

    _ensure_database(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)
    run()

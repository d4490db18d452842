"""One request that creates something runs once per key: the API's Idempotency-Key header and the
key every creating form of the pages carries (a double click, a resent form, a retried call).

The key is taken in a short transaction of its own and the request then runs outside it, so no
slow call (a file store that hangs) ever runs while a database lock or SQLite's write lock is held.
A concurrent request with the same key waits for the first one's answer and replays it; if the
first one gives its key back (it failed, a retry should run), the waiting one runs instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from consult.models import IdempotencyKey, User

# Status of a key whose request is still running: no real answer has status 0.
PENDING = 0
KEY_MAX_LENGTH = 100
# How long a second request waits for the first one's answer before saying it is still running.
WAIT_SECONDS = 20.0
# A key still pending after this long belongs to a request that died (its process was killed):
# a retry takes it over. Far longer than any request can run (storage calls time out in seconds).
STALE_AFTER = timedelta(minutes=5)
_POLL_FIRST, _POLL_MAX = 0.05, 0.5


class KeyReused(Exception):
    """The key was first used for another endpoint."""


class StillRunning(Exception):
    """The first request with this key has not answered yet."""


@dataclass
class Claim:
    """A key taken by this request (`finished` False: run it) or the first answer (True: replay it)."""

    row: IdempotencyKey
    finished: bool

    @property
    def status(self) -> int:
        return self.row.status

    @property
    def body(self) -> Any:
        return self.row.body


def idempotency_claim(*, user: User, key: str, endpoint: str, wait: float | None = None) -> Claim:
    """Take `key` for `endpoint`, or get the answer already given for it.

    Raises KeyReused when the key was used for another endpoint, StillRunning when the request that
    took it is still running after `wait` seconds (default WAIT_SECONDS). Call outside any
    transaction: the key must be committed (visible to a concurrent request) before the request runs.
    """
    deadline = time.monotonic() + (WAIT_SECONDS if wait is None else wait)
    pause = _POLL_FIRST
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                row, taken = IdempotencyKey.objects.get_or_create(
                    user=user, key=key, defaults={"endpoint": endpoint, "status": PENDING, "created_at": now}
                )
        except IntegrityError:  # taken and given back between the two statements: look again
            continue
        if taken:
            return Claim(row=row, finished=False)
        if row.endpoint != endpoint:
            raise KeyReused(key)
        if row.status != PENDING:
            return Claim(row=row, finished=True)
        if row.created_at < now - STALE_AFTER:
            # Compare-and-set on the time it was taken: of two retries only one takes it over.
            if IdempotencyKey.objects.filter(pk=row.pk, status=PENDING, created_at=row.created_at).update(
                created_at=now
            ):
                row.created_at = now
                return Claim(row=row, finished=False)
            continue
        if time.monotonic() >= deadline:
            raise StillRunning(key)
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


def idempotency_finish(*, claim: Claim, status: int, body: Any) -> None:
    """Keep the answer of the request that held the key, for every retry to replay."""
    assert status != PENDING and not claim.finished
    claim.row.status, claim.row.body = status, body
    IdempotencyKey.objects.filter(pk=claim.row.pk).update(status=status, body=body)


def idempotency_release(*, claim: Claim) -> None:
    """Give the key back: the request failed in a way a retry may not (storage down, throttled,
    a form shown again with its errors), so the next request with this key runs for real."""
    IdempotencyKey.objects.filter(pk=claim.row.pk, status=PENDING).delete()


def idempotency_purge(*, older_than: timedelta) -> int:
    """Forget keys taken longer ago than `older_than` (their retries are long over). Returns how
    many were removed."""
    removed, _by_model = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return removed

"""Rate limits counted in the shared cache (Redis in production), so every process counts the same
tries: a fixed window per actor, its counter created by `cache.add` (only the first request of a
window does) and raised by `cache.incr` (atomic in Redis, and under a lock in the local-memory
cache), never read and then written back, so requests at the same moment all count.

Rates are written as DRF's: "10/min", "20/hour", "300/day", or with a number of units,
"20/10s", "10/10min". Settings hold them in RATE_LIMITS (scope -> rate), from the environment.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds


def parse_rate(text: str) -> Rate:
    match = RATE.match(text.lower())
    if match is None:
        raise ValueError(f"a rate is written like 10/min or 20/10s, not {text!r}")
    count, multiple, unit = match.groups()
    return Rate(int(count), int(multiple or 1) * UNITS[unit])


def rate_of(scope: str) -> Rate:
    return parse_rate(settings.RATE_LIMITS[scope])


class RateLimited(Exception):
    """Too many tries in the window: `retry_after` seconds until the next one counts again."""

    def __init__(self, scope: str, retry_after: int, message: str = "") -> None:
        super().__init__(scope, retry_after)
        self.scope = scope
        self.retry_after = retry_after
        self._message = message

    @property
    def has_message(self) -> bool:
        return bool(self._message)

    @property
    def message(self) -> str:
        return self._message or wait_message(self.retry_after)


# A window's key lives a little past the window, so a clock a second off between hosts cannot
# start a second count for the same window.
GRACE_SECONDS = 5


def window_key(scope: str, actor: str, window_start: int) -> str:
    return f"limit:{scope}:{actor}:{window_start}"


def count_in(cache: BaseCache, key: str, amount: int, timeout: int) -> int:
    """Add `amount` to the count at `key` (made if missing) and return it, atomically."""
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key, amount))
    except ValueError:
        # Expired between add and incr (the window's last instant): this try opens the next one.
        cache.add(key, amount, timeout=timeout)
        return amount


def take(scope: str, actor: str, *, rate: Rate | None = None) -> None:
    """Count one try of `actor` (an address, a user, a case reference) against `scope`'s rate, or
    raise RateLimited when it is over. A try refused is counted too: hammering does not help."""
    rate = rate or rate_of(scope)
    now = time.time()
    window_start = int(now // rate.window) * rate.window
    count = count_in(cache, window_key(scope, actor, window_start), 1, rate.window + GRACE_SECONDS)
    if count > rate.limit:
        raise RateLimited(scope, max(1, int(window_start + rate.window - now + 0.999)))


def wait_message(seconds: int) -> str:
    """"Too many tries", with the wait in the words a resident reads (minutes past two)."""
    if seconds < 120:
        wait = ngettext(
            "Please wait %(n)d second and try again.", "Please wait %(n)d seconds and try again.", seconds
        ) % {"n": seconds}
    elif seconds < 120 * 60:
        minutes = (seconds + 59) // 60
        wait = ngettext(
            "Please wait %(n)d minute and try again.", "Please wait %(n)d minutes and try again.", minutes
        ) % {"n": minutes}
    else:
        hours = (seconds + 3599) // 3600
        wait = ngettext("Please try again in %(n)d hour.", "Please try again in %(n)d hours.", hours) % {"n": hours}
    return _("Too many tries. %(wait)s") % {"wait": wait}

"""Health for a load balancer: `/health/live` and `/health/ready`.

`live` says the process answers (from the event loop, nothing else checked): a balancer or systemd
restarts a process that stops answering it. `ready` says this process can serve now: the database,
the cache, the channel layer, the file storage and the job broker each answer, checked at once
(concurrently) with short timeouts, by django-health-check's checks for the first three and our own
for the channel layer and the broker (its Celery checks ping workers: a stopped worker must not take
every app host out of the balancer). 200 when all answer; 503 naming the ones that did not.

What they answer is JSON, without error texts (they can name hosts and users): the reason goes to
the log, once when the process stops being ready and once when it is ready again. They touch no
session and set no cookie; they are exempt from the HTTPS redirect (a balancer probes over plain
HTTP on the private network) but not from ALLOWED_HOSTS: the balancer sends the site's Host header
(README, "Health and metrics").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Cache, Database, Storage
from health_check.exceptions import ServiceUnavailable

logger = logging.getLogger(__name__)

PROBE_GROUP = "health.probe"


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """One publish through this process's own channel layer (its Redis connection, as the chat's
    broadcasts take): a group nobody is in, so nothing is delivered."""

    async def run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise ServiceUnavailable("no channel layer")
        try:
            await layer.group_send(PROBE_GROUP, {"type": "health.probe"})
        except Exception as error:
            raise ServiceUnavailable(type(error).__name__) from error


@dataclasses.dataclass
class Broker(HealthCheck):
    """A connection to the job broker, opened and closed (on Redis: connect and PING). Not the
    workers: jobs queued while they are stopped wait for them, and pages go on."""

    def run(self) -> None:
        from consult.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0)
                connection.default_channel  # noqa: B018 - makes the channel: the Redis transport PINGs
        except Exception as error:
            raise ServiceUnavailable(type(error).__name__) from error


def _checks() -> dict[str, HealthCheck]:
    seconds = timedelta(seconds=settings.HEALTH_CHECK_SECONDS)
    checks: dict[str, HealthCheck] = {
        "database": Database(),
        "cache": Cache(timeout=seconds),
        "channel_layer": ChannelLayer(),
        "storage": Storage(),
        "broker": Broker(),
    }
    for check in checks.values():
        check.timeout = seconds
    return checks


class _State:
    """Whether this process was ready at its last probe, to log changes rather than every probe."""

    ready = True


_state = _State()


def _no_store(response: JsonResponse) -> JsonResponse:
    add_never_cache_headers(response)
    return response


@require_safe
async def live(request: HttpRequest) -> JsonResponse:
    return _no_store(JsonResponse({"status": "ok"}))


@require_safe
async def ready(request: HttpRequest) -> JsonResponse:
    checks = _checks()
    results: list[HealthCheckResult] = await asyncio.gather(*(check.get_result() for check in checks.values()))
    failed = {name: result for name, result in zip(checks, results, strict=True) if result.error}
    if failed and _state.ready:
        reasons = ", ".join(f"{name} ({result.error})" for name, result in failed.items())
        logger.error("not ready: %s", reasons)
    elif not failed and not _state.ready:
        logger.warning("ready again")
    _state.ready = not failed
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": {name: "unavailable" if name in failed else "ok" for name in checks},
    }
    return _no_store(JsonResponse(body, status=503 if failed else 200))

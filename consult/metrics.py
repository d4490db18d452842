"""Prometheus metrics at `/metrics`: django-prometheus's (requests, latencies, responses by view)
and the platform's own.

- `consult_open_sockets{kind}`: websockets open now in this process (case_room, queue_feed).
- `consult_chat_messages_total`: chat messages stored (sockets and API); `rate()` of it is messages
  per second.
- `consult_queue_waiting{service,kind}` and `consult_queue_oldest_wait_seconds{service,kind}`: the
  cases waiting in each service's line and how long the first of them has waited, read at scrape
  time by one grouped query (the `case_queue_idx` index: status, then service) and the services' list.
- `consult_notices{status}` (`failed`, `queued`): the notices outbox by status, read at scrape time
  (the `notice_status_idx` index).

Processes: each daphne (and each worker) counts in its own memory and answers for itself; with
several daphnes a host, either Prometheus scrapes each one's port (no shared state, the default),
or PROMETHEUS_MULTIPROC_DIR names an empty folder (emptied at every start, before the processes)
that prometheus_client's multiprocess mode writes each process's values to, and whichever process
answers the scrape sums them (open sockets: of the live processes only). The scrape-time gauges are
read from the database and so the same from any process.

Only addresses in METRICS_ALLOWED_NETWORKS (default loopback) are answered, by consult/net.py's
rule (behind TRUSTED_PROXIES proxies, the address the outermost one saw): the proxy in front must
not forward `/metrics` from outside anyway.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from consult.net import client_address

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # A process that exits (a daphne stopped or restarted) takes its sockets out of the sum; one that
    # is killed leaves them until the folder is emptied at the next start of the host's processes.
    atexit.register(lambda: mark_process_dead(os.getpid()))

OPEN_SOCKETS = Gauge("consult_open_sockets", "Websockets open now", ["kind"], multiprocess_mode="livesum")
CHAT_MESSAGES = Counter("consult_chat_messages", "Chat messages stored (sockets and API)")


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS]


def allowed(request: HttpRequest) -> bool:
    address = client_address(request)
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket's IPv4 client
        ip = ip.ipv4_mapped
    return any(ip in network for network in allowed_networks())


class PlatformCollector(Collector):
    """The gauges read from the database when scraped: three queries, whatever the services."""

    def collect(self) -> Iterator[Metric]:
        from consult.models import Case, Skill, Status
        from notices.models import Notice, NoticeStatus

        waiting = GaugeMetricFamily("consult_queue_waiting", "Cases waiting in line", labels=["service", "kind"])
        oldest = GaugeMetricFamily(
            "consult_queue_oldest_wait_seconds",
            "How long the first case in line has waited (0: none waiting)",
            labels=["service", "kind"],
        )
        lines = {
            row["skill_id"]: row
            for row in Case.objects.filter(status=Status.WAITING)
            .order_by()
            .values("skill_id")
            .annotate(n=Count("id"), since=Min("submitted_at"))
        }
        now = timezone.now()
        for skill_id, code, kind in Skill.objects.order_by("code").values_list("id", "code", "kind"):
            line = lines.get(skill_id)
            waiting.add_metric([code, kind], line["n"] if line else 0)
            since = line["since"] if line else None
            oldest.add_metric([code, kind], max((now - since).total_seconds(), 0.0) if since else 0.0)
        yield waiting
        yield oldest

        notices = GaugeMetricFamily("consult_notices", "Notices in the outbox by status", labels=["status"])
        counted = dict(
            Notice.objects.filter(status__in=(NoticeStatus.FAILED, NoticeStatus.QUEUED))
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
        for status in (NoticeStatus.FAILED, NoticeStatus.QUEUED):
            notices.add_metric([str(status)], counted.get(status, 0))
        yield notices


_scraped = CollectorRegistry(auto_describe=False)
_scraped.register(PlatformCollector())


def process_registry() -> CollectorRegistry:
    """This process's metrics, or with PROMETHEUS_MULTIPROC_DIR every process's, summed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    body = generate_latest(process_registry()) + generate_latest(_scraped)
    response = HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response

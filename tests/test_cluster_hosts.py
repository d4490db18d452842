"""The service on several hosts, as deploy/ describes it, with failures: a balancer host (nginx with
deploy/'s site and sysctls), two app hosts (each a daphne started from deploy/'s unit and a Celery
worker), a PostgreSQL host, a Redis host and an S3 host (moto), each a network namespace of its
own on a private subnet (tests/hosts.py). The test process is the internet: every request and
socket goes through the balancer, over TLS.

Through the balancer: a phone's journey (log-in, a case opened twice with one Idempotency-Key,
a file to S3, the doctor accepts, the resident's SMS written by a worker), the tracking limit
counted across both app hosts whatever X-Forwarded-For a client sends, two doctors going on duty
at the same moment on different hosts (no case given twice), then a conversation between a
resident and a doctor whose sockets land on different app hosts, during which one app host's
link goes down, PostgreSQL restarts, and, once the first host is back, the other host's daphne is
restarted as systemd does (SIGTERM, sockets drained with 4503, started again). Pass marks: every
acknowledged message held exactly once, in order, by every tab after resync; the balancer stops
sending requests to the dead host within 10 s and no request fails meanwhile (but the 503 of the
restart's moment); no 5xx once everything is back. The figures are printed.

Redis runs behind Sentinel (a master, its replica on another host, three sentinels); mid-conversation
the master's host is lost and the replica takes over.

Last, the browsers (Debian's Chromium, as tests/e2e/): a resident on a phone opens a case through the
balancer's address, a doctor on a desktop takes it, their sockets on different app hosts, and the
resident's host is lost while they chat: her page reconnects through the balancer and every line
arrives once, in order.

Runs in the services pass (CONSULT_REQUIRE_SERVICES=1, or CONSULT_CLUSTER=1 alone): a part it
cannot start fails it there, it never skips. Root and iproute2, nginx, Debian's PostgreSQL 15,
redis-server and moto's server (in the dev requirements) are what it needs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests

from tests.api.conftest import MEDICAL_BODY
from tests.cluster import Tab, assert_held_exactly_once, until
from tests.cluster_hosts import DAPHNE_PORT, FAIL_TIMEOUT, UNIT_STOP_SECONDS, Cluster, access_log, start_cluster
from tests.consult import files_corpus as corpus
from tests.hosts import Host
from tests.live import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("CONSULT_REQUIRE_SERVICES") != "1" and os.environ.get("CONSULT_CLUSTER") != "1",
        reason="the cluster test runs in the services pass (CONSULT_REQUIRE_SERVICES=1) or with CONSULT_CLUSTER=1",
    ),
]

PASSWORD = "consult2026"  # the demo accounts' (seed_demo)
RESIDENT, RESIDENT_2 = "13800000002", "13800000003"  # 李大山 and 陈小梅: no cases of their own yet
RESPIRATORY_DOCTOR = "13900000002"  # 王芳, the only respiratory doctor
GENERAL_DOCTORS = ("13900000001", "13900000003")  # 李建国 and 陈志强, both in "general"
MESSAGES_PER_TAB = 40
TYPING_INTERVAL = 0.6
ROUTED_WITHIN = 10.0  # seconds after the link goes down by which the balancer routes around it


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    stops: list[Callable[[], None]] = []
    try:
        yield stops
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as error:  # one part that will not stop must not keep the others running
                print(f"cleanup: {stop}: {error}")


# --- the phone app -----------------------------------------------------------------------------


class App:
    def __init__(self, cluster: Cluster, phone: str, otp_code: str | None = None) -> None:
        self.cluster = cluster
        self.http = cluster.session()
        credentials = {"phone": phone, "password": PASSWORD, **({"otp_code": otp_code} if otp_code else {})}
        answer = self.post("auth/token/", json=credentials)
        assert answer.status_code == 200, answer.text
        self.token: str = answer.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def url(self, path: str) -> str:
        return f"{self.cluster.base}{path}" if path.startswith("/") else f"{self.cluster.base}/api/v1/{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), timeout=30, **kwargs)


def wait_for_sms(cluster: Cluster, phone: str, kind: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for day in cluster.sms.glob("*.jsonl"):
            for line in day.read_text().splitlines():
                sent = json.loads(line)
                if sent["phone"] == phone and sent["kind"] == kind:
                    return dict(sent)
        time.sleep(0.2)
    raise AssertionError(f"no {kind} SMS to {phone} within {timeout} s (a worker writes it)")


def journey(cluster: Cluster, figures: dict[str, Any]) -> tuple[str, App, App]:
    resident = App(cluster, RESIDENT)
    key = str(uuid.uuid4())
    opened = resident.post("cases/medical/", json=MEDICAL_BODY, headers={"Idempotency-Key": key})
    retried = resident.post("cases/medical/", json=MEDICAL_BODY, headers={"Idempotency-Key": key})
    assert opened.status_code == 201, opened.text
    assert retried.status_code == 201 and retried.headers["Idempotent-Replay"] == "true", retried.text
    reference = opened.json()["reference"]
    assert retried.json()["reference"] == reference
    uploaded = resident.post(
        f"cases/{reference}/documents/",
        files={"file": ("胸片报告.pdf", corpus.pdf(), "application/pdf")},
        data={"kind": "exam_report"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert uploaded.status_code == 201, uploaded.text
    s3 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = s3.client("s3", endpoint_url=cluster.s3_endpoint, region_name="us-east-1").list_objects_v2(
        Bucket=cluster.bucket
    )
    assert stored["KeyCount"] >= 1, "the upload is not in the S3 host's bucket"

    doctor = App(cluster, RESPIRATORY_DOCTOR, otp_code="demo0001")
    accepted = doctor.post(f"cases/{reference}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "active", accepted.text
    detail = resident.get(f"cases/{reference}/").json()
    assert [d["name"] for d in detail["documents"]] == ["胸片报告.pdf"]
    downloaded = resident.get(detail["documents"][0]["url"], allow_redirects=False)
    assert downloaded.status_code in (200, 302), downloaded.status_code
    notice = wait_for_sms(cluster, RESIDENT, "case_accepted")
    figures["journey"] = {"reference": reference, "accepted SMS": notice["text"][:40]}
    # The two calls with one key went to both app hosts, and still made one case.
    creates = [e for e in access_log(cluster) if e.method == "POST" and e.path == "/api/v1/cases/medical/"]
    figures["journey"]["idempotent create served by"] = [cluster.app_of(e.upstream) for e in creates]
    return reference, resident, doctor


def tracking_limit(cluster: Cluster, figures: dict[str, Any]) -> None:
    """THROTTLE_TRACKING (20/hour per address) counted once for both app hosts, whatever
    X-Forwarded-For the client makes up (the balancer appends the real one, TRUSTED_PROXIES=1)."""
    http = cluster.session()
    statuses = []
    for n in range(26):
        answer = http.post(
            f"{cluster.base}/api/v1/track/",
            json={"reference": f"ZZ{uuid.uuid4().hex[:8].upper()}", "phone_last4": "0000"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
            timeout=30,
        )
        statuses.append(answer.status_code)
    served = [e for e in access_log(cluster) if e.path == "/api/v1/track/"]
    hosts = {cluster.app_of(e.upstream) for e in served if e.status != 429}
    figures["tracking limit"] = {
        "allowed": sum(s != 429 for s in statuses),
        "refused": statuses.count(429),
        "allowed by": sorted(hosts),
    }
    assert statuses[:20] == [404] * 20 and statuses[20:] == [429] * 6, statuses
    assert hosts == {"app1", "app2"}, served
    assert {e.client for e in served} == {cluster.network.client_address}


def on_duty_race(cluster: Cluster, figures: dict[str, Any]) -> None:
    """Two doctors of one service go on duty at the same moment, on different app hosts, while ten
    cases wait: each is given its cases, none is given to both."""
    doctors = [App(cluster, phone, otp_code="demo0001") for phone in GENERAL_DOCTORS]
    for doctor in doctors:
        answer = doctor.post("queue/on-duty/", json={"on_duty": False})
        assert answer.status_code == 200, answer.text
    resident = App(cluster, RESIDENT_2)
    waiting = []
    for n in range(10):
        body = {**MEDICAL_BODY, "skill": "general", "complaint": f"头晕{n}天"}
        answer = resident.post("cases/medical/", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert answer.status_code == 201, answer.text
        waiting.append(answer.json()["reference"])
    barrier = threading.Barrier(len(doctors))
    given: dict[int, list[str]] = {}

    def go(n: int, doctor: App) -> None:
        barrier.wait()
        answer = doctor.post("queue/on-duty/", json={"on_duty": True})
        assert answer.status_code == 200, answer.text
        given[n] = answer.json()["given"]

    threads = [threading.Thread(target=go, args=(n, d)) for n, d in enumerate(doctors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    both = set(given[0]) & set(given[1])
    with psycopg.connect(cluster.postgres.url.replace("postgres://", "postgresql://")) as db:
        rows = db.execute(
            "select c.reference, u.phone from consult_case c left join consult_professional p on p.id = c.assignee_id "
            "left join consult_user u on u.id = p.user_id where c.reference = any(%s)",
            [waiting],
        ).fetchall()
    holder: dict[str, str | None] = {reference: phone for reference, phone in rows}
    served = {cluster.app_of(e.upstream) for e in access_log(cluster) if e.path == "/api/v1/queue/on-duty/"}
    figures["on-duty race"] = {
        "waiting": len(waiting),
        "given": [len(given[0]), len(given[1])],
        "given twice": len(both),
        "served by": sorted(served),
    }
    assert both == set(), both
    for n, phone in enumerate(GENERAL_DOCTORS):
        assert all(holder[reference] == phone for reference in given[n]), (n, given, holder)
    assert sum(len(g) for g in given.values()) == len([r for r in waiting if holder[r] is not None])


# --- the conversation through a lost app host and a PostgreSQL restart ---------------------------


def connected(tab: Tab) -> Callable[[], bool]:
    return lambda: tab.connects > 0


def longest_gap(moments: Any) -> float:
    ordered = sorted(moments)
    return round(max((b - a for a, b in itertools.pairwise(ordered)), default=0.0), 1)


class Prober(threading.Thread):
    """A GET through the balancer every 0.25 s, as pages do: what it answers and how long it takes."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()
        self.results: list[tuple[float, int | str, float]] = []  # (sent at, status or error, seconds)

    def run(self) -> None:
        http = self.cluster.session()
        n = 0
        while not self.stopping.is_set():
            n += 1
            sent = time.time()
            try:
                status: int | str = http.get(f"{self.cluster.base}/api/v1/services/?probe={n}", timeout=30).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            self.results.append((sent, status, time.time() - sent))
            self.stopping.wait(0.25)


def conversation(cluster: Cluster, reference: str, resident: App, doctor: App, figures: dict[str, Any]) -> None:
    app1 = cluster.apps[0]
    tls = cluster.tls()
    tabs = [
        Tab(
            name=f"{who}-{n}",
            urls=[f"wss://{cluster.network.hosts['lb'].address}/ws/cases/{reference}/?tab={who}-{n}"],
            origin=cluster.base,
            headers={"Authorization": f"Token {app.token}"},
            typing_interval=TYPING_INTERVAL,
            script=[(f"{who}-{n}-{i}", f"{who} {n} 第{i}句") for i in range(MESSAGES_PER_TAB)],
            tls=tls,
        )
        for who, app in (("resident", resident), ("doctor", doctor))
        for n in (0, 1)
    ]
    prober = Prober(cluster)
    marks: dict[str, float] = {}

    async def scenario() -> None:
        deadline = time.monotonic() + 240
        tasks = []
        for tab in tabs:  # one after the other: round robin puts them on alternate hosts
            tasks.append(asyncio.create_task(tab.run(deadline)))
            await until(connected(tab), f"{tab.name} to connect", deadline, tabs)
        try:
            await until(lambda: sum(len(t.acked) for t in tabs) >= 20, "20 acks", deadline, tabs)
            prober.start()
            await asyncio.sleep(1)
            marks["link down"] = time.time()
            await asyncio.to_thread(app1.link, up=False)
            await until(
                lambda: sum(len(t.acked) for t in tabs) >= 60 and time.time() > marks["link down"] + 20,
                "60 acks with app1 down",
                deadline,
                tabs,
            )
            marks["postgres restart"] = time.time()
            figures["postgres restart seconds"] = round(await asyncio.to_thread(cluster.postgres.restart), 2)
            await until(lambda: sum(len(t.acked) for t in tabs) >= 90, "90 acks after the restart", deadline, tabs)
            # Redis's master host lost: the sentinels promote the replica, every client (layer,
            # cache, broker, limits) asks them again, and the chat goes on.
            marks["redis failover"] = time.time()
            figures["redis failover seconds"] = round(await asyncio.to_thread(cluster.redis_failover), 2)
            await until(lambda: sum(len(t.acked) for t in tabs) >= 100, "100 acks after the failover", deadline, tabs)
            figures["acks again after the failover s"] = round(time.time() - marks["redis failover"], 2)
            marks["link up"] = time.time()
            await asyncio.to_thread(app1.link, up=True)
            # A rolling restart's step (RUNBOOK.md): app2's daphne stopped as systemd stops it and
            # started again; its sockets are told 4503 and come back through the balancer.
            await until(lambda: sum(len(t.acked) for t in tabs) >= 110, "110 acks", deadline, tabs)
            # As RUNBOOK.md says: not before the balancer sends requests to the host that came back
            # (nginx learns it only by trying again, fail_timeout after its last failure); stopping
            # the other one before would leave nginx no live daphne (502 for every request).
            while not any(
                e.started >= marks["link up"] and e.upstream == f"{app1.address}:{DAPHNE_PORT}" and e.status < 500
                for e in access_log(cluster)
            ):
                if time.monotonic() > deadline:
                    raise AssertionError("the balancer never sent a request to app1 again")
                await asyncio.sleep(0.5)
            marks["app1 routed again"] = time.time()
            figures["app1 routed again after link up s"] = round(marks["app1 routed again"] - marks["link up"], 1)
            marks["restart"] = time.time()
            code, seconds = await asyncio.to_thread(cluster.daphnes["app2"].restart)
            marks["restarted"] = time.time()
            figures["rolling restart of app2"] = {"exit code": code, "stop seconds": round(seconds, 2)}
            await until(lambda: all(len(t.acked) == MESSAGES_PER_TAB for t in tabs), "every ack", deadline, tabs)
            final = max(seq for t in tabs for seq in t.acked.values())
            for tab in tabs:
                tab.stop_at_seq = final
            await until(lambda: all(t.done for t in tabs), "every tab to catch up", deadline, tabs)
            marks["done"] = time.time()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    chat_started = time.monotonic()
    try:
        asyncio.run(scenario())
    finally:
        prober.stopping.set()
        if prober.is_alive():
            prober.join(timeout=40)
    chat_seconds = time.monotonic() - chat_started

    # Exactly once, in typing order, for every tab.
    with psycopg.connect(cluster.postgres.url.replace("postgres://", "postgresql://")) as db:
        stored = [
            {"seq": seq, "kind": kind, "sender_id": sender, "client_id": client_id, "body": body}
            for seq, kind, sender, client_id, body in db.execute(
                "select m.seq, m.kind, m.sender_id, m.client_id, m.body from consult_message m "
                "join consult_case c on c.id = m.case_id where c.reference = %s order by m.seq",
                [reference],
            ).fetchall()
        ]
    assert_held_exactly_once(tabs, stored)

    log = access_log(cluster)
    # The sockets: which host each tab's first one went to (logged when it closed).
    first_host: dict[str, str] = {}
    for entry in sorted((e for e in log if e.path.startswith("/ws/")), key=lambda e: e.started):
        tab_name = entry.path.rsplit("tab=", 1)[-1]
        first_host.setdefault(tab_name, cluster.app_of(entry.upstream))
    # A resident's socket and the doctor's on different app hosts: their messages crossed Redis.
    residents, doctors = ("resident-0", "resident-1"), ("doctor-0", "doctor-1")
    assert any(first_host[r] != first_host[d] for r in residents for d in doctors), first_host
    app1_upstream = f"{app1.address}:{DAPHNE_PORT}"

    # The balancer routes around the dead host within ROUTED_WITHIN seconds, and no probe fails.
    down, up = marks["link down"], marks["link up"]
    # Requests nginx sent to the dead host first: those it then passed on to the live one, and those
    # answered by it alone before the link came back (none, if the outage is real). Pages and API
    # calls (the sockets have an upstream of their own in nginx, see deploy/nginx/consult.conf).
    tried_dead = sorted(
        (
            e
            for e in log
            if down <= e.started <= up
            and e.upstream.split(",")[0].strip() == app1_upstream
            and ("," in e.upstream or e.ended <= up)
        ),
        key=lambda e: e.started,
    )
    handshakes_to_dead = [e for e in tried_dead if e.path.startswith("/ws/")]
    tried_dead = [e for e in tried_dead if not e.path.startswith("/ws/")]
    assert tried_dead, "no request was sent to the dead host at all: the outage was not observed"
    marked_down = tried_dead[0].ended - down
    trials = [e.started for e in tried_dead]
    gaps = [b - a for a, b in itertools.pairwise(trials)]
    restart_at = marks["postgres restart"]
    restart_end = restart_at + figures["postgres restart seconds"] + 5
    probes_down = [p for p in prober.results if down <= p[0] <= up]
    during_restart = [p for p in prober.results if restart_at <= p[0] <= restart_end]
    failover_at = marks["redis failover"]
    during_failover = [
        p for p in prober.results if failover_at <= p[0] <= failover_at + figures["redis failover seconds"] + 5
    ]
    # A 503 (with Retry-After) is the honest answer while PostgreSQL restarts or Redis fails over.
    failed = [
        p
        for p in prober.results
        if not (isinstance(p[1], int) and p[1] < 500)
        and not (p in during_restart + during_failover and p[1] == 503)
    ]
    figures["app host lost"] = {
        "marked down after s": round(marked_down, 2),
        "requests sent to the dead host while down": len(tried_dead),
        "seconds between them": [round(g, 1) for g in gaps],
        "those requests": [
            (e.path[:40], round(e.started - down, 1), e.upstream, e.ustatus, e.status) for e in tried_dead
        ],
        "probes while down": len(probes_down),
        "slowest probe s": round(max(p[2] for p in probes_down), 2),
        "probes failed": [(round(p[0] - down, 1), p[1], round(p[2], 2)) for p in failed],
        "socket handshakes sent to the dead host": [
            (round(e.started - down, 1), e.ustatus) for e in handshakes_to_dead
        ],
        "longest wait between two acks s": {t.name: longest_gap(t.acked_at.values()) for t in tabs},
    }
    figures["postgres restart"] = {
        "probes during it": len(during_restart),
        "answered 503 (Retry-After)": sum(p[1] == 503 for p in during_restart),
    }
    figures["redis failover"] = {
        "probes during it": len(during_failover),
        "answered 503 (Retry-After)": sum(p[1] == 503 for p in during_failover),
    }
    assert marked_down <= ROUTED_WITHIN, figures["app host lost"]
    # After the first failure only nginx's retry of the host, once per fail_timeout (a request that
    # still goes on to the live host), never ordinary traffic.
    assert all(g >= FAIL_TIMEOUT - 0.5 for g in gaps), figures["app host lost"]
    assert failed == [], failed[:10]
    # A handshake nginx sent to the dead host went on to the live one: the socket opened.
    assert all(e.status == 101 for e in handshakes_to_dead), handshakes_to_dead

    # The restarted daphne drained its sockets and exited by itself within the unit's bound; its
    # sockets' clients were told 4503 and came back; no request failed meanwhile (checked above).
    restart = figures["rolling restart of app2"]
    restart["4503 closes"] = sum(t.closes.count(4503) for t in tabs)
    assert restart["exit code"] == 0 and restart["stop seconds"] < UNIT_STOP_SECONDS, restart
    assert restart["4503 closes"] >= 1, [t.state() for t in tabs]

    acked = sum(len(t.acked) for t in tabs)
    figures["conversation"] = {
        "messages": acked,
        "seconds": round(chat_seconds, 1),
        "acked per second": round(acked / chat_seconds, 1),
        "first sockets on": first_host,
        "connects": {t.name: t.connects for t in tabs},
        "resyncs": {t.name: t.resyncs for t in tabs},
        "retryable errors": sum(len(t.errors) for t in tabs),
        "replayed copies dropped": sum(t.duplicates for t in tabs),
    }


def after_recovery(cluster: Cluster, resident: App, reference: str, figures: dict[str, Any]) -> None:
    """Once the host is back (and nginx has tried it again, after fail_timeout): no 5xx, both hosts serve."""
    time.sleep(FAIL_TIMEOUT + 1)
    mark = time.time()
    paths = ["/", "/api/v1/services/", "/track/", "/api/v1/figures/", "/figures/", "/static/js/room.js"]
    statuses = []
    for n in range(40):
        path = paths[n % len(paths)]
        answer = resident.http.get(f"{cluster.base}{path}{'&' if '?' in path else '?'}recovery={n}", timeout=30)
        statuses.append(answer.status_code)
    case = resident.get(f"cases/{reference}/")
    statuses.append(case.status_code)
    # Static files by their hashed names, from STATIC_ROOT by nginx itself: its Cache-Control
    # (WhiteNoise on an app host would say max-age=315360000).
    manifest = json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())
    static = resident.http.get(f"{cluster.base}/static/{manifest['paths']['js/room.js']}", timeout=30)
    assert static.status_code == 200 and b"ReconnectingSocket" in static.content
    assert static.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    served = [e for e in access_log(cluster) if e.started >= mark - 0.1 and "recovery=" in e.path]
    hosts = {cluster.app_of(e.upstream) for e in served if e.upstream != "-"}
    figures["after recovery"] = {
        "requests": len(statuses),
        "5xx": sum(s >= 500 for s in statuses),
        "served by": sorted(hosts),
    }
    assert all(s < 500 for s in statuses), statuses
    assert hosts == {"app1", "app2"}, [(e.path, e.upstream) for e in served]


# --- the browsers --------------------------------------------------------------------------------

BROWSER_RESIDENT = "13800000001"  # 王秀英: no case yet
BROWSER_DOCTOR = "13900000004"  # 刘静, the only dermatologist
BROWSER_RECOVERY_CODE = "demo0001"  # one of her recovery codes (seed_demo), used once: her second factor
BROWSER_TIMEOUT_MS = 20_000
RECONNECT_TIMEOUT_MS = 60_000  # a socket proxied to a lost host is cut by the balancer's TCP in ~13 s


def sockets_on(cluster: Cluster, app: Host) -> int:
    """Case-room sockets open on one app host now, by its own /metrics (read from the subnet, as
    Prometheus would)."""
    http = cluster.session()
    # ALLOWED_HOSTS holds the site's name only (the balancer's address here).
    answer = http.get(
        f"http://{app.address}:{DAPHNE_PORT}/metrics", headers={"Host": cluster.balancer.address}, timeout=10
    )
    assert answer.status_code == 200, answer.status_code
    match = re.search(r'^consult_open_sockets\{kind="case_room"\} ([\d.]+)$', answer.text, flags=re.MULTILINE)
    return int(float(match[1])) if match else 0


def browser_journey(cluster: Cluster, figures: dict[str, Any]) -> None:
    """Debian's Chromium through the balancer's address: a resident on a phone opens a case, the
    dermatologist takes it on her desktop, they chat with their sockets on different app hosts;
    the resident's host is lost and her page reconnects (through the balancer, to the other host)
    and the conversation goes on, every line once, in order."""
    from playwright.sync_api import Page, expect, sync_playwright

    from tests.e2e.conftest import CHROMIUM, DESKTOP, LAUNCH_ARGS, PHONE, next_step, zh, zh_in

    def log_in(page: Page, phone: str) -> None:
        page.goto("/accounts/login/")
        page.fill("#id_username", phone)
        page.fill("#id_password", PASSWORD)
        page.locator("main").get_by_role("button", name=zh("Log in with my password")).click()

    def send(page: Page, text: str) -> None:
        page.fill("#chat-input", text)
        page.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()

    def acked(page: Page, text: str) -> None:
        mine = page.locator("#chat-log li.mine", has_text=text)
        expect(mine).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)
        expect(mine).to_have_attribute("data-seq", re.compile(r"^\d+$"), timeout=RECONNECT_TIMEOUT_MS)

    def seen(page: Page, text: str) -> float:
        started = time.monotonic()
        expect(page.locator("#chat-log li.theirs", has_text=text)).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)
        return time.monotonic() - started

    def connected(page: Page) -> None:
        expect(page.locator("#conn-state")).to_have_class("conn conn-connected", timeout=RECONNECT_TIMEOUT_MS)

    def per_host(before: dict[str, int]) -> dict[str, int]:
        """Case-room sockets opened on each host since `before` (sockets of the earlier
        conversation a host still counts are not these pages')."""
        return {app.name: sockets_on(cluster, app) - before.get(app.name, 0) for app in cluster.apps}

    def settled(before: dict[str, int], sockets: int) -> dict[str, int]:
        """`per_host` once a page's earlier socket (closed as it navigated) is no longer counted."""
        deadline = time.monotonic() + 5
        counts = per_host(before)
        while sum(counts.values()) != sockets and time.monotonic() < deadline:
            time.sleep(0.1)
            counts = per_host(before)
        return counts

    started = time.monotonic()
    result: dict[str, Any] = {}
    figures["browsers"] = result
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            options: dict[str, Any] = {"base_url": cluster.base, "ignore_https_errors": True}
            phone = chromium.new_context(**PHONE, **options).new_page()
            desk = chromium.new_context(**DESKTOP, **options).new_page()
            errors: list[str] = []
            for page in (phone, desk):
                page.context.set_default_timeout(BROWSER_TIMEOUT_MS)
                page.on("pageerror", lambda error: errors.append(str(error)))

            # The resident logs in on her phone and opens a dermatology case (no document needed).
            log_in(phone, BROWSER_RESIDENT)
            expect(phone).not_to_have_url(re.compile(r"/accounts/login/"))
            before = per_host({})
            phone.goto("/services/dermatology/new/")
            phone.fill("#id_complaint", "手背起红疹三天，很痒。")
            phone.fill("#id_since_when", "三天")
            phone.fill("#id_patient_age", "58")
            phone.check("input[name=patient_sex][value=female]")
            next_step(phone)
            phone.check("#id_health_consent")
            phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()
            expect(phone).to_have_url(re.compile(r"/cases/[^/]+/$"))
            reference = phone.url.rstrip("/").rsplit("/", 1)[-1]
            connected(phone)
            hers = settled(before, 1)
            phone_host = next(app for app in cluster.apps if hers[app.name] == 1)
            result["reference"] = reference
            result["case opened s"] = round(time.monotonic() - started, 1)

            # The doctor logs in (password, then a recovery code as her second factor) and accepts it.
            log_in(desk, BROWSER_DOCTOR)
            expect(desk).to_have_url(re.compile(r"/accounts/2fa/verify/"))
            desk.fill("#id_code", BROWSER_RECOVERY_CODE)
            desk.locator("main").get_by_role("button", name=zh("Continue")).click()
            expect(desk).to_have_url(re.compile(r"/work/$"))
            desk.goto(f"/cases/{reference}/")
            desk.get_by_role("button", name=zh("Accept the case")).click()
            expect(desk.locator("#chat-form")).to_be_visible()
            connected(desk)
            expect(phone.locator("#case-status")).to_contain_text("刘静")

            # The two sockets on different app hosts (round robin; the doctor's page opened again
            # until hers lands on the host the resident's is not on).
            hosts = settled(before, 2)
            reloads = 0
            while sorted(hosts.values()) != [1, 1] and reloads < 8:
                reloads += 1
                desk.reload()
                connected(desk)
                hosts = settled(before, 2)
            result["case-room sockets per host"] = hosts
            result["doctor's page reloads to split them"] = reloads
            assert sorted(hosts.values()) == [1, 1], hosts

            # Live both ways: each line reaches the other side through Redis, from host to host.
            lines = [
                (phone, desk, "医生您好，手背上的疹子越来越多。"),
                (desk, phone, "您好，最近换过洗衣粉或护手霜吗？"),
            ]
            latencies = []
            for sender, reader, text in lines:
                send(sender, text)
                latencies.append(seen(reader, text))
                acked(sender, text)
            result["line seen on the other side s"] = [round(s, 2) for s in latencies]

            lost_at = time.monotonic()
            phone_host.link(up=False)
            # She writes at once; her socket (through the balancer to the lost host) is cut when the
            # balancer's TCP gives up, her page reconnects to the other host and sends it then.
            after = ["换了新的洗衣液。", "还有点发烧。"]
            for text in after:
                send(phone, text)
            doctor_lines = ["先停用新的洗衣液。", "发烧的话请量一下体温告诉我。"]
            for text in doctor_lines:
                send(desk, text)
            for text in after:
                seen(desk, text)
                acked(phone, text)
            result["lost host"] = phone_host.name
            result["her lines reached the doctor after the loss s"] = round(time.monotonic() - lost_at, 1)
            for text in doctor_lines:
                seen(phone, text)
                acked(desk, text)
            connected(phone)
            # Both sockets on the host left (the lost one cannot be asked).
            live = next(app for app in cluster.apps if app is not phone_host)
            result[f"case-room sockets on {live.name} after"] = sockets_on(cluster, live) - before[live.name]
            send(phone, "好的，谢谢医生。")
            seen(desk, "好的，谢谢医生。")

            # Every line once on both pages, each person's lines in the order they were typed.
            expected = [lines[0][2], lines[1][2], *after, *doctor_lines, "好的，谢谢医生。"]
            for page in (phone, desk):
                texts = page.locator("#chat-log li[data-seq] p").all_inner_texts()
                seqs = page.locator("#chat-log li[data-seq]").evaluate_all("items => items.map(li => li.dataset.seq)")
                assert len(seqs) == len(set(seqs)), seqs
                kept = [t for t in texts if t in expected]
                assert sorted(kept) == sorted(expected), texts
                assert [t for t in kept if t in after] == after, texts
                assert [t for t in kept if t in doctor_lines] == doctor_lines, texts
            assert errors == [], errors
            phone_host.link(up=True)
        finally:
            chromium.close()
    result["seconds"] = round(time.monotonic() - started, 1)


def test_the_service_on_several_hosts_behind_the_balancer_survives_a_lost_host_and_a_database_restart(
    tmp_path: Path, cleanup: list[Callable[[], None]]
) -> None:
    started = time.monotonic()
    figures: dict[str, Any] = {}
    cluster = start_cluster(tmp_path, cleanup)
    try:
        reference, resident, doctor = journey(cluster, figures)
        tracking_limit(cluster, figures)
        on_duty_race(cluster, figures)
        conversation(cluster, reference, resident, doctor, figures)
        after_recovery(cluster, resident, reference, figures)
        browser_journey(cluster, figures)
    except BaseException:
        for log in [
            *sorted(tmp_path.glob("*.log")),
            tmp_path / "nginx" / "error.log",
            tmp_path / "nginx" / "consult.error.log",
        ]:
            if log.exists():
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        figures["timings"] = {k: round(v, 1) for k, v in cluster.timings.items()}
        figures["total seconds"] = round(time.monotonic() - started, 1)
        print("cluster figures:", json.dumps(figures, ensure_ascii=False, indent=1))
    for app in cluster.apps:
        served = (tmp_path / f"{app.name}-daphne.log").read_text(errors="replace")
        assert "Traceback" not in served, served[-4000:]

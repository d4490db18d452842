"""Run the benchmarks on a throwaway SQLite database (or DATABASE_URL if set) and print ratios."""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="consult-bench-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
os.environ.setdefault("PRIVATE_FILES_ROOT", f"{_tmp}/private")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def statements(fn: Callable[[], object]) -> int:
    """Statements that do work (transaction framing such as BEGIN/COMMIT not counted)."""
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        fn()
    framing = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")
    return sum(1 for q in queries.captured_queries if not q["sql"].upper().startswith(framing))


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ROUNDS rounds of `repeat` calls."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def row(name: str, subject: float, baseline: float, baseline_name: str, note: str = "") -> None:
    ratio = subject / baseline
    print(f"{name:<44} {subject * 1000:9.3f} ms  {baseline_name:<30} {baseline * 1000:9.3f} ms  x{ratio:7.2f}  {note}")


def main() -> None:
    from bench.pages import _ensure_database

    _ensure_database(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)
    from PIL import Image

    from consult import services
    from consult.figures import compute
    from consult.files import check_upload
    from consult.models import Case, Kind, Message, Professional, Role, Skill, Status, User
    from consult.services import messages as chat

    password = make_password("bench-password-123")
    skill = Skill.objects.create(
        kind=Kind.MEDICAL,
        code="bench",
        name_zh="测试",
        name_en="Bench",
        office_zh="办",
        office_en="Office",
        office_phone="0",
        response_hours=24,
    )
    resident = User.objects.create(phone="13800009999", name="居民", role=Role.RESIDENT, password=password)
    doctor_user = User.objects.create(phone="13900009999", name="医生", role=Role.DOCTOR, password=password)
    doctor = Professional.objects.create(
        user=doctor_user, kind=Kind.MEDICAL, organisation="医院", city="杭州", capacity=100_000, on_duty=True
    )
    doctor.skills.add(skill)
    case = services.case_submit(resident=resident, skill=skill, description="bench")
    services.case_accept(case=case, professional=doctor)
    case.refresh_from_db()

    print(f"{'benchmark':<44} {'time':>12}  {'baseline':<30} {'time':>12}  {'ratio':>8}")
    print("-" * 130)

    # 1. A chat message: the full service (client-id check, sequence, insert, broadcast) against a
    #    bare ORM insert of the same row.
    counter = iter(range(10**9))
    seq = iter(range(10**6, 10**9))
    subject = timed(
        lambda: chat.message_post(case=case, sender=resident, body="你好", client_id=f"c{next(counter)}"), 200
    )
    baseline = timed(lambda: Message.objects.create(case=case, seq=next(seq), sender=resident, body="你好"), 200)
    count = statements(lambda: chat.message_post(case=case, sender=resident, body="count", client_id="count-me"))
    row("message_post", subject, baseline, "Message.objects.create", f"{count} statements")

    # 2. Taking the next case from a queue of 2,000, against a plain conditional update.
    now = timezone.now()
    Case.objects.bulk_create(
        Case(
            reference=f"Q{i:07d}",
            kind=Kind.MEDICAL,
            skill=skill,
            resident=resident,
            status=Status.WAITING,
            description="q",
            submitted_at=now,
            waiting_at=now,
        )
        for i in range(2000)
    )
    ids = iter(Case.objects.filter(status=Status.WAITING).values_list("pk", flat=True)[1000:])
    subject = timed(lambda: services.case_claim_next(professional=doctor), 50)
    baseline = timed(lambda: Case.objects.filter(pk=next(ids), status=Status.WAITING).update(status=Status.ACTIVE), 50)
    row("case_claim_next (queue of 2000)", subject, baseline, "conditional UPDATE by pk")

    # 3. The public figures, against counting the cases; then the same with five times the cases,
    #    to show how it scales (the number of statements stays the same).
    def grow(n: int) -> None:
        Case.objects.bulk_create(
            Case(
                reference=f"F{Case.objects.count() + i:07d}",
                kind=Kind.MEDICAL,
                skill=skill,
                resident=resident,
                status=Status.CLOSED,
                description="f",
                submitted_at=now,
                first_response_at=now,
                resolved_at=now,
            )
            for i in range(n)
        )

    grow(2_000 - Case.objects.count() % 2_000)
    small = Case.objects.count()
    subject_small = timed(compute, 3)
    statements_small = statements(compute)
    grow(4 * small)
    large = Case.objects.count()
    subject = timed(compute, 3)
    baseline = timed(lambda: Case.objects.count(), 3)
    row(
        f"figures.compute ({large:,} cases)",
        subject,
        baseline,
        "Case.objects.count()",
        f"{statements(compute)} statements ({statements_small} at {small:,})",
    )
    row(f"figures.compute: {large:,} vs {small:,} cases", subject, subject_small, f"figures.compute ({small:,} cases)")

    # 4. Checking a phone photo (decode within the pixel limit, strip EXIF, re-encode), against
    #    only decoding it.
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), "white").save(buffer, "JPEG", quality=90)
    photo = buffer.getvalue()
    subject = timed(lambda: check_upload(io.BytesIO(photo), "photo.jpg"), 10)
    baseline = timed(lambda: Image.open(io.BytesIO(photo)).load(), 10)
    row("check_upload (1600x1200 JPEG)", subject, baseline, "decoding it with Pillow")

    # 5. The consultation summary PDF, against rendering its HTML only.
    from django.template.loader import render_to_string

    from consult.pdf import render_pdf

    context = {
        "case": case,
        "qr": "",
        "verify_url": "https://example.invalid/verify/x",
        "generated_at": now,
        "documents": [],
        "intake": None,
        "note": None,
        "doctor": doctor,
        "doctor_profile": None,
    }
    subject = timed(lambda: render_pdf("pdf/medical_summary.html", context), 3)
    baseline = timed(lambda: render_to_string("pdf/medical_summary.html", context), 3)
    row("summary PDF (WeasyPrint, CJK font)", subject, baseline, "rendering the HTML only")

    # 6. The staff pages and the public figures at 100,000 cases, against the home page (bench/pages.py).
    from bench.pages import pages

    pages()

    # 7. Claims by 16 professionals at once on PostgreSQL, against the bare queue statement (bench/claims.py).
    from bench.claims import run as claims

    claims()

    # 8. Chat on two daphnes + Redis + PostgreSQL, against a bare broadcast consumer (bench/chat.py).
    from bench.chat import main as chat_bench

    chat_bench()

    # 9. Daphne CPU per socket handshake, hello and close, against the bare consumer (bench/handshake.py).
    from bench.handshake import main as handshake_bench

    handshake_bench()

    # 10. Notices delivered through the outbox by a real worker, against a bare task (bench/notices.py).
    from bench.notices import run as notices_bench

    notices_bench()

    # 10. Chat and claims with the balancer routing to one app host, then to two, on hosts of their
    #     own (network namespaces; root only, says why otherwise: bench/cluster.py).
    from bench.cluster import main as cluster_bench

    cluster_bench()


if __name__ == "__main__":
    main()

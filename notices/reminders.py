"""Notices that come from the time passing rather than from a change: written by periodic jobs
(notices/tasks.py, scheduled in jobs/schedule.py). Each is written once: a job run twice, or two
runs at once, find the notice already there (under the case's row lock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone

from consult.models import Case, Professional, Role, Skill, Status, User
from notices.case_notices import claim_notify, local_time_text
from notices.kinds import NoticeKind
from notices.links import case_link
from notices.models import Notice, NoticeStatus
from notices.services import notify

# How far back the claims job looks: longer than beat can be down and come back.
CLAIM_WINDOW = timedelta(hours=1)
# Professionals told of one overdue case (the least loaded first would be nicer; any on duty do).
OVERDUE_PROFESSIONALS = 10


def _lock_case(pk: int) -> Case:
    return Case.objects.select_for_update(of=("self",)).select_related("resident", "assignee__user", "skill").get(pk=pk)


def claims_notify() -> int:
    """The notices claims still owe: run by a job the claims queue (notices.tasks.claim_notify_soon:
    one for many claims a second) and every minute for a claim whose job never ran (a broker
    down, a process that died). Returns how many it wrote."""
    told = Notice.objects.filter(
        case=OuterRef("pk"), kind=NoticeKind.CASE_ACCEPTED, created_at__gte=OuterRef("accepted_at")
    )
    owed = Case.objects.filter(
        status=Status.ACTIVE, accepted_at__gte=timezone.now() - CLAIM_WINDOW, assignee__isnull=False
    ).exclude(Exists(told)).values_list("pk", flat=True)
    return sum(claim_notify(case_pk=pk) for pk in list(owed))


def _dashboard_link() -> str:
    return settings.SITE_URL + reverse("dashboard")


def overdue_notify() -> int:
    """Waiting cases past their service's promised response time: the professionals of that
    service on duty are told, once per case; coordinators get one notice with how many cases
    newly passed their promise. Returns the number of such cases."""
    now = timezone.now()
    told = Notice.objects.filter(case=OuterRef("pk"), kind=NoticeKind.CASE_OVERDUE)
    # Per service (a few dozen): each its own promise, compared on an indexable column.
    overdue: list[int] = []
    for skill_id, hours in Skill.objects.filter(cases__status=Status.WAITING).distinct().values_list(
        "pk", "response_hours"
    ):
        overdue += Case.objects.filter(
            status=Status.WAITING, skill_id=skill_id, submitted_at__lt=now - timedelta(hours=hours)
        ).exclude(Exists(told)).values_list("pk", flat=True)
    count = 0
    for pk in overdue:
        with transaction.atomic():
            case = _lock_case(pk)
            if case.status != Status.WAITING or Notice.objects.filter(case=case, kind=NoticeKind.CASE_OVERDUE).exists():
                continue
            professionals = (
                Professional.objects.filter(skills=case.skill, on_duty=True, user__is_active=True)
                .exclude(pk__in=case.declined_by.values("pk"))
                .select_related("user")[:OVERDUE_PROFESSIONALS]
            )
            link = case_link(case.pk)
            for professional in professionals:
                notify(user=professional.user, kind=NoticeKind.CASE_OVERDUE, case=case,
                       params={"case": case.reference, "hours": case.skill.response_hours, "link": link})
            if not professionals:
                # Still mark the case as told, so coordinators count it once.
                Notice.objects.create(
                    kind=NoticeKind.CASE_OVERDUE, case=case, channel="sms", language=settings.LANGUAGE_CODE,
                    status=NoticeStatus.SKIPPED, error="no professional on duty for this service",
                    params={"case": case.reference, "hours": str(case.skill.response_hours), "link": link},
                )
            count += 1
    if count:
        with transaction.atomic():
            for coordinator in User.objects.filter(role=Role.COORDINATOR, is_active=True):
                notify(user=coordinator, kind=NoticeKind.CASES_OVERDUE,
                       params={"count": count, "link": _dashboard_link()})
    return count


def failed_notify() -> int:
    """Coordinators hear of notices that failed since they were last told (one notice for all of
    them). Returns how many failed."""
    last = Notice.objects.filter(kind=NoticeKind.NOTICES_FAILED).order_by("-created_at").first()
    failed = Notice.objects.filter(status=NoticeStatus.FAILED).exclude(kind=NoticeKind.NOTICES_FAILED)
    if last is not None:
        failed = failed.filter(updated_at__gt=last.created_at)
    count = failed.count()
    if count:
        with transaction.atomic():
            for coordinator in User.objects.filter(role=Role.COORDINATOR, is_active=True):
                notify(user=coordinator, kind=NoticeKind.NOTICES_FAILED,
                       params={"count": count, "link": _dashboard_link()})
    return count


def visit_reminders() -> int:
    """Residents with a home visit tomorrow (local date) are reminded once per booking: a visit
    moved after its reminder is reminded again. Returns how many were written."""
    from medical.models import HomeVisit, VisitStatus

    tomorrow = timezone.localdate() + timedelta(days=1)
    start = timezone.make_aware(datetime.combine(tomorrow, time.min))
    visits = HomeVisit.objects.filter(
        status=VisitStatus.SCHEDULED, scheduled_for__gte=start, scheduled_for__lt=start + timedelta(days=1)
    ).values_list("pk", "case_id")
    written = 0
    for visit_pk, case_pk in list(visits):
        with transaction.atomic():
            case = _lock_case(case_pk)
            visit = HomeVisit.objects.get(pk=visit_pk)
            reminded = Notice.objects.filter(
                case=case, kind=NoticeKind.VISIT_REMINDER, created_at__gte=visit.updated_at
            ).exists()
            if reminded or visit.status != VisitStatus.SCHEDULED or visit.scheduled_for is None:
                continue
            language = case.resident.language
            notify(user=case.resident, kind=NoticeKind.VISIT_REMINDER, case=case, params={
                "case": case.reference, "when": local_time_text(visit.scheduled_for, language),
                "link": case_link(case.pk),
            })
            written += 1
    return written


# Warnings to the lawyer this many days before the arbitration deadline.
ARBITRATION_WARNINGS = (30, 7)


def _date_text(day: date, language: str) -> str:
    return f"{day.month}月{day.day}日" if language.startswith("zh") else f"{day.day} {day:%b %Y}"


def _remind_once(case_pk: int, recipient: Callable[[Case], User | None], kind: str, **params: Any) -> bool:
    """One notice of `kind` about `case_pk` with these parameters, ever (under the case's lock)."""
    with transaction.atomic():
        case = _lock_case(case_pk)
        user = recipient(case)
        if user is None:
            return False
        values = {k: _date_text(v, user.language) if isinstance(v, date) else str(v) for k, v in params.items()}
        if Notice.objects.filter(case=case, kind=kind, **{f"params__{k}": v for k, v in values.items()}).exists():
            return False
        notify(user=user, kind=kind, case=case, params={"case": case.reference, **values, "link": case_link(case.pk)})
        return True


def _assignee(case: Case) -> User | None:
    return case.assignee.user if case.assignee is not None else None


def date_reminders() -> int:
    """Dates the cases store: a consultation's follow-up (the resident, the day before), a
    mediation's payment due (the lawyer, the day before, while not received in full), the deadline
    to file for labour arbitration, typed by the lawyer or worked out from the intake (the lawyer,
    30 and 7 days before). Returns how many were written."""
    from legal.models import MediationOutcome
    from medical.models import ConsultationNote

    tomorrow = timezone.localdate() + timedelta(days=1)
    written = 0
    for case_pk in ConsultationNote.objects.filter(follow_up_date=tomorrow).values_list("case_id", flat=True):
        written += _remind_once(case_pk, lambda case: case.resident, NoticeKind.FOLLOW_UP_DUE, date=tomorrow)
    unpaid = MediationOutcome.objects.filter(payment_due=tomorrow).exclude(amount_received__gte=F("amount_agreed"))
    for case_pk in unpaid.values_list("case_id", flat=True):
        written += _remind_once(case_pk, _assignee, NoticeKind.PAYMENT_DUE, date=tomorrow)
    for days in ARBITRATION_WARNINGS:
        deadline = timezone.localdate() + timedelta(days=days)
        for case_pk in MediationOutcome.objects.filter(arbitration_deadline=deadline).values_list("case_id", flat=True):
            written += _remind_once(case_pk, _assignee, NoticeKind.ARBITRATION_DEADLINE, days=days, date=deadline)
        for case_pk in _limitation_ends_on(deadline):
            written += _remind_once(case_pk, _assignee, NoticeKind.ARBITRATION_DEADLINE, days=days, date=deadline)
    return written


def _limitation_ends_on(deadline: date) -> list[int]:
    """Open disputes whose limit worked out from the intake (legal/limitation.py: one year from the
    end of the job, for pay and dismissal claims) falls on `deadline`, while mediation goes on with
    no outcome recorded yet (a dispute not settled has its deadline typed with the outcome, and
    that one is reminded of above)."""
    from legal.estimate import RULE_FOR_SKILL
    from legal.limitation import PAY_RULES, ends_with_deadline
    from legal.models import DisputeFacts, LegalIntake, MediationOutcome

    counted = sorted(code for code, rule in RULE_FOR_SKILL.items() if rule in PAY_RULES | {DisputeFacts.DISMISSAL})
    return list(
        LegalIntake.objects.filter(
            employment_end__in=ends_with_deadline(deadline),
            case__skill__code__in=counted,
            case__status__in=(Status.ASSIGNED, Status.ACTIVE),
        )
        .exclude(Exists(MediationOutcome.objects.filter(case=OuterRef("case"))))
        .values_list("case_id", flat=True)
    )

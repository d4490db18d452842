"""Who hears of what happens on a case. Called by the timeline (consult/services/timeline.py)
for each line it records, inside the transaction of the change: the notices commit with it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone, translation

from consult.models import Case, CaseEvent, Status, User, Verb
from notices.kinds import NoticeKind
from notices.links import case_link
from notices.models import Notice
from notices.services import notify

# A summary printed when the case is closed comes with the closing notice's link: one SMS, not two.
SUMMARY_WITH_CLOSE = timedelta(minutes=10)


def local_time_text(moment: datetime, language: str) -> str:
    local = timezone.localtime(moment)
    if language.startswith("zh"):
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {local:%b %H:%M}"


def _service(case: Case, language: str) -> str:
    with translation.override(language):
        return str(case.skill.name)


def _to_resident(case: Case, actor: User | None, kind: str, **params: Any) -> Notice | None:
    resident = case.resident
    if actor is not None and actor.pk == resident.pk:
        return None  # nobody is told of what they did themselves
    return notify(user=resident, kind=kind, params={"case": case.reference, **params, "link": case_link(case.pk)},
                  case=case)


def case_event_notify(*, case: Case, verbs: Sequence[str], actor: User | None, detail: dict[str, Any]) -> None:
    """The notices for the steps `verbs` one person just took on `case`."""
    for verb in verbs:
        if verb in (Verb.ASSIGNED, Verb.REASSIGNED) and case.assignee is not None:
            professional = case.assignee.user
            if actor is None or actor.pk != professional.pk:
                notify(user=professional, kind=NoticeKind.CASE_ASSIGNED, case=case, params={
                    "case": case.reference, "service": _service(case, professional.language),
                    "link": case_link(case.pk),
                })
        elif verb == Verb.ACCEPTED and case.assignee is not None:
            language = case.resident.language
            answer_by = (case.accepted_at or timezone.now()) + timedelta(hours=case.skill.response_hours)
            _to_resident(case, actor, NoticeKind.CASE_ACCEPTED, professional=case.assignee.user.name,
                         by=local_time_text(answer_by, language))
        elif verb in (Verb.DECLINED, Verb.TIMED_OUT):
            _to_resident(case, actor, NoticeKind.CASE_RETURNED)
        elif verb == Verb.RESOLVED:
            _to_resident(case, actor, NoticeKind.CASE_RESOLVED)
        elif verb == Verb.CLOSED:
            _to_resident(case, actor, NoticeKind.CASE_CLOSED)
        elif verb == Verb.SUMMARY_GENERATED:
            just_closed = Notice.objects.filter(
                case=case, kind=NoticeKind.CASE_CLOSED, created_at__gte=timezone.now() - SUMMARY_WITH_CLOSE
            ).exists()
            if not just_closed:
                _to_resident(case, actor, NoticeKind.SUMMARY_READY)
        elif verb == Verb.VISIT_SCHEDULED:
            language = case.resident.language
            when = local_time_text(datetime.fromisoformat(detail["scheduled_for"]), language)
            earlier = CaseEvent.objects.filter(case=case, verb=Verb.VISIT_SCHEDULED).count() > 1
            _to_resident(case, actor, NoticeKind.VISIT_CHANGED if earlier else NoticeKind.VISIT_SCHEDULED, when=when)
        elif verb == Verb.ERASURE_APPROVED:
            _to_resident(case, actor, NoticeKind.ERASURE_APPROVED)
        elif verb == Verb.ERASURE_REFUSED:
            _to_resident(case, actor, NoticeKind.ERASURE_REFUSED)
        elif verb == Verb.VISIT_CANCELLED:
            with translation.override(case.resident.language):
                when = str(translation.gettext("cancelled"))
            _to_resident(case, actor, NoticeKind.VISIT_CHANGED, when=when)


@transaction.atomic
def claim_notify(*, case_pk: int) -> bool:
    """Tell the resident that their case, taken from the line ("take the next case"), was
    accepted: once per acceptance, under the case's lock. On PostgreSQL the claim (one statement of
    its own, consult/services/cases.py) has the job notices.tasks.claims_notify call this for every
    claim owed a notice (notices.tasks.claim_notify_soon), and the minute job calls it for a claim
    whose job never ran.
    Returns whether it wrote the notice."""
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("resident", "assignee__user", "skill")
        .filter(pk=case_pk)
        .first()
    )
    if case is None or case.status != Status.ACTIVE or case.assignee is None or case.accepted_at is None:
        return False
    # Told of this acceptance already (a case returned to the line and taken again is news again).
    if Notice.objects.filter(case=case, kind=NoticeKind.CASE_ACCEPTED, created_at__gte=case.accepted_at).exists():
        return False
    case_event_notify(case=case, verbs=[Verb.ACCEPTED], actor=case.assignee.user, detail={})
    return True

"""Staff reads of a case, on its timeline: the resident sees who looked at their case and when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from consult.models import Case, CaseEvent, Role, User, Verb
from consult.services.timeline import record_event

# One line per staff member and case in this time: a reload, the chat's paging or a day's work on
# the case is one read, not hundreds.
READ_RECORD_WINDOW = timedelta(minutes=30)


def is_staff_reader(case: Case, user: User) -> bool:
    """Anyone but the case's resident who reads it is staff: the assignee, other professionals, a
    coordinator, an admin (residents see only their own cases)."""
    return user.pk != case.resident_id and (user.role != Role.RESIDENT or user.is_staff or user.is_superuser)


def case_read_record(*, case: Case, user: User, timeline: Iterable[CaseEvent] | None = None) -> CaseEvent | None:
    """Record that `user` (staff) read `case`, unless they already did within the window. The
    caller has checked access (`case_get_for_user`). `timeline`: the case's events already loaded
    by the caller, so the check costs no query (the page has them anyway).

    Two reads at the same instant may both be written: harmless, and no lock on a read path."""
    if not is_staff_reader(case, user):
        return None
    since = timezone.now() - READ_RECORD_WINDOW
    if timeline is not None:
        recent = any(e.verb == Verb.VIEWED and e.actor_id == user.pk and e.created_at >= since for e in timeline)
    else:
        recent = CaseEvent.objects.filter(case=case, verb=Verb.VIEWED, actor=user, created_at__gte=since).exists()
    if recent:
        return None
    event = record_event(case, Verb.VIEWED, user, role=user.role)
    event.actor = user  # the page shows the name: no query for it
    return event

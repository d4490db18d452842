"""The case state machine, matching and the queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult import files
from consult.domains import domain_of
from consult.errors import CaseConflict, CaseError, InvalidTransition, NotAllowed, WrongState
from consult.models import (
    LOAD_STATUSES,
    REOPEN_TRANSITIONS,
    STATUS_TIMESTAMP,
    TRANSITIONS,
    Case,
    Priority,
    Professional,
    Role,
    Skill,
    Status,
    User,
    Verb,
    new_reference,
)
from consult.services import claim_statement
from consult.services.documents import summary_generate
from consult.services.messages import message_payload
from consult.services.timeline import record_event, record_events
from consult.tally import tally_refresh, tally_responded
from notices.case_notices import case_event_notify
from notices.tasks import claim_notify_soon
from realtime.events import (
    DASHBOARD_GROUP,
    CaseMessageEvent,
    CaseStatusEvent,
    Event,
    case_group,
    queue_changed,
    queue_group,
    send_events_on_commit,
)

logger = logging.getLogger(__name__)
_UNSET: Any = object()


def _transition(
    case: Case,
    to: str,
    *,
    actor: User | None,
    verb: str,
    assignee: Professional | None = _UNSET,
    then: tuple[str, str] | None = None,
    **detail: Any,
) -> None:
    """Move `case` to `to`, stamping its time and recording the event.

    The write is a compare-and-set on the status and assignee it was read with, so two
    concurrent writers cannot both move the same case: the loser gets CaseConflict.

    `then` is a second step, (status, verb), taken by the same actor in the same write: a claim
    is assigned and accepted at once. Both steps are checked against TRANSITIONS, stamped and
    kept in the timeline; the case moves with one update and is announced once.
    """
    before_status, before_assignee = case.status, case.assignee_id
    steps = [(to, verb), *([then] if then else [])]
    status = before_status
    for step, step_verb in steps:
        undo = status == Status.WITHDRAWN and step_verb == Verb.REOPENED and step in REOPEN_TRANSITIONS
        if step not in TRANSITIONS[status] and not undo:
            raise InvalidTransition(status, step)
        status = step
    now = timezone.now()
    changes: dict[str, Any] = {"status": status}
    for step, _verb in steps:
        changes[STATUS_TIMESTAMP[Status(step)]] = now
    if assignee is not _UNSET:
        changes["assignee"] = assignee
    if status == Status.ACTIVE and case.first_response_at is None:
        changes["first_response_at"] = now
    for field, value in changes.items():
        setattr(case, field, value)
    # Relations are set by this module, not typed by a user: skip their lookup queries.
    case.full_clean(exclude=["skill", "resident", "assignee"], validate_unique=False)
    updated = Case.objects.filter(pk=case.pk, status=before_status, assignee_id=before_assignee).update(**changes)
    if updated != 1:
        raise CaseConflict()
    if then is None:
        record_event(case, verb, actor, **detail)
    else:
        record_events(case, actor, [(verb, detail), (then[1], {})])
    # What the figures count of it changed (a handover counts once the case is resolved).
    if status in (Status.RESOLVED, Status.WITHDRAWN):
        tally_refresh(case)
    elif "first_response_at" in changes:
        tally_responded(case)
    _announce(case)
    left = status not in LOAD_STATUSES or case.assignee_id != before_assignee
    frees_a_slot = before_status in LOAD_STATUSES and left
    # One who let a case time out is likely away: the line waits for someone who answers.
    if before_assignee is not None and frees_a_slot and verb != Verb.TIMED_OUT:
        _fill(Professional(pk=before_assignee), besides=case.pk)


def _announce(case: Case, *, first: Sequence[tuple[str, Event]] = ()) -> None:
    """After commit: the case's new status to its room, a refresh to its queue and the dashboard,
    after the events `first`; all sent together."""
    status: CaseStatusEvent = {"type": "case.status", "reference": case.reference, "status": case.status}
    changed = queue_changed(case.skill_id)
    send_events_on_commit(
        [*first, (case_group(case.pk), status), (queue_group(case.skill_id), changed), (DASHBOARD_GROUP, changed)]
    )


# --- matching ------------------------------------------------------------------------------


def eligible_professionals(case: Case) -> QuerySet[Professional]:
    """On duty, with the case's skill, below capacity, never one who declined it: least loaded
    first, then the one idle longest."""
    return (
        Professional.objects.filter(kind=case.kind, skills=case.skill, on_duty=True, user__is_active=True)
        .exclude(pk__in=case.declined_by.values("pk"))
        .annotate(load=Count("cases", filter=Q(cases__status__in=LOAD_STATUSES), distinct=True))
        .filter(load__lt=F("capacity"))
        .order_by("load", F("last_assigned_at").asc(nulls_first=True), "pk")
    )


def _load(professional: Professional) -> int:
    return Case.objects.filter(assignee=professional, status__in=LOAD_STATUSES).count()


def _lock_professional(professional: Professional) -> Professional:
    """Lock the professional's row, so two cases matched at once cannot both take the last slot.
    Count their load in a later statement: on PostgreSQL a statement reads as of its start, and one
    that waited for this lock would miss the case the holder took (a slot given twice)."""
    # of=("self",): lock the professional, not their user (read along for the timeline's name).
    return Professional.objects.select_for_update(of=("self",)).select_related("user").get(pk=professional.pk)


def _match(case: Case) -> Professional | None:
    """Assign `case` to the best eligible professional, or put it in its skill's queue.
    Call inside a transaction."""
    for candidate in eligible_professionals(case)[:5]:
        professional = _lock_professional(candidate)
        if not professional.on_duty or _load(professional) >= professional.capacity:
            continue
        _transition(
            case,
            Status.ASSIGNED,
            actor=None,
            verb=Verb.ASSIGNED,
            assignee=professional,
            professional=professional.user.name,
        )
        professional.last_assigned_at = timezone.now()
        professional.save(update_fields=["last_assigned_at"])
        return professional
    if case.status != Status.WAITING:
        _transition(case, Status.WAITING, actor=None, verb=Verb.WAITING, assignee=None)
    return None


# --- case services -------------------------------------------------------------------------


@transaction.atomic
def case_submit(
    *,
    resident: User,
    skill: Skill,
    description: str,
    priority: int = Priority.NORMAL,
    source_place: str = "",
) -> Case:
    """Open a case for `resident` and match it at once: assigned, or waiting in line."""
    if resident.role != Role.RESIDENT:
        raise NotAllowed(_("Only residents open cases."))
    if not skill.is_active:
        raise CaseError(_("This service is not offered at the moment."))
    reference = new_reference()
    while Case.objects.filter(reference=reference).exists():
        reference = new_reference()
    now = timezone.now()
    case = Case(
        reference=reference,
        kind=skill.kind,
        skill=skill,
        resident=resident,
        description=description,
        priority=priority,
        source_place=source_place[:100],
        created_at=now,
        submitted_at=now,
    )
    case.full_clean()
    case.save()
    record_event(case, Verb.SUBMITTED, resident)
    _match(case)
    tally_refresh(case)
    return case


def _require_assignee(locked: Case, seen: Case, professional: Professional) -> None:
    """`locked` is the row as it is now, `seen` as the caller read it. Assigned to the caller when
    read but not any more: someone changed it meanwhile (a conflict, not a refusal)."""
    if locked.assignee_id == professional.pk:
        return
    if seen.assignee_id == professional.pk:
        raise CaseConflict()
    raise NotAllowed(_("Only the professional the case is assigned to can do this."))


def _reload_locked(case: Case) -> Case:
    # of=("self",): PostgreSQL refuses FOR UPDATE over the outer join to the nullable assignee.
    return Case.objects.select_for_update(of=("self",)).select_related("skill", "assignee__user").get(pk=case.pk)


def _skip_locked_supported() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def _claim_in_one_statement() -> bool:
    """PostgreSQL takes, writes and records a claim in one statement (claim_statement.py); other
    databases go through the queue query and `_transition` (SQLite runs one writer at a time)."""
    return connection.vendor == "postgresql"


def _below_capacity(me: Professional) -> GreaterThan:
    """`me` has a free slot, counted by the statement that takes the case (after `me`'s lock)."""
    load = (
        Case.objects.filter(assignee=me, status__in=LOAD_STATUSES)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return GreaterThan(Value(me.capacity), Coalesce(Subquery(load, output_field=IntegerField()), 0))


def _head_of_line(me: Professional, *, besides: int | None = None) -> Case | None:
    """The next waiting case in `me`'s skills that `me` has a free slot for and never declined
    (nor the case `besides`), locked; on PostgreSQL passing over cases another claimer holds."""
    skills = Professional.skills.through.objects.filter(professional=me).values("skill_id")
    queue = (
        Case.objects.filter(_below_capacity(me), status=Status.WAITING, kind=me.kind, skill__in=skills)
        .exclude(declined_by=me)
        .order_by("-priority", "submitted_at", "pk")
    )
    if besides is not None:
        queue = queue.exclude(pk=besides)
    # Its resident and service read with it: the notices name them.
    queue = queue.select_related("resident", "skill")
    if _skip_locked_supported():
        queue = queue.select_for_update(skip_locked=True, of=("self",))
    return queue.first()


def _fill(professional: Professional, *, besides: int | None = None) -> list[Case]:
    """Give `professional` the waiting cases of their skills, in line order, until their slots are
    full: assigned, for them to accept (or the accept timeout moves it on), as matching does on
    submit; never `besides`, the case just moved off them. Nothing when they are off duty. Call
    inside a transaction."""
    me = _lock_professional(professional)
    if not me.on_duty or not me.user.is_active:
        return []
    given: list[Case] = []
    while (case := _head_of_line(me, besides=besides)) is not None:
        try:
            _transition(case, Status.ASSIGNED, actor=None, verb=Verb.ASSIGNED, assignee=me, professional=me.user.name)
        except CaseConflict:
            break
        given.append(case)
    if given:
        Professional.objects.filter(pk=me.pk).update(last_assigned_at=given[-1].assigned_at)
    return given


@transaction.atomic
def case_fill(*, professional: Professional) -> list[Case]:
    """What a professional going on duty, or a slot of theirs freeing, sets off: the waiting
    cases they can take are given to them, without anyone pressing "take next"."""
    return _fill(professional)


def cases_fill_free_slots() -> int:
    """Fill every professional on duty with a free slot while cases wait in their skills: the
    backstop of the minute job, for slots freed where no service was told (a capacity raised in
    the admin). Returns how many cases were given."""
    waiting_skills = Case.objects.filter(status=Status.WAITING).values("skill_id")
    candidates = (
        Professional.objects.filter(on_duty=True, user__is_active=True, skills__in=waiting_skills)
        .annotate(load=Count("cases", filter=Q(cases__status__in=LOAD_STATUSES), distinct=True))
        .filter(load__lt=F("capacity"))
        .distinct()
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )
    return sum(len(case_fill(professional=professional)) for professional in candidates)


def _claim_portable(me: Professional) -> Case | None:
    """The next case for `me` through the ORM: read the head of the line, then move it with the
    compare-and-set (CaseConflict if someone moved it first)."""
    case = _head_of_line(me)
    if case is None:
        return None
    _transition(
        case, Status.ASSIGNED, actor=me.user, verb=Verb.CLAIMED, assignee=me, then=(Status.ACTIVE, Verb.ACCEPTED)
    )
    me.last_assigned_at = case.assigned_at
    Professional.objects.filter(pk=me.pk).update(last_assigned_at=me.last_assigned_at)
    return case


def case_claim_next(*, professional: Professional) -> Case | None:
    """Give `professional` the next waiting case in their skills (highest priority, then the
    one waiting longest), already accepted. None when the queue is empty.

    The claim is atomic: on PostgreSQL, SKIP LOCKED lets concurrent claimers pass over each
    other's rows; everywhere, the compare-and-set refuses a second claimer. On PostgreSQL a claim
    is one statement (claim_statement.py); elsewhere the professional's lock and seven statements.
    Either way the room hears of it once, after commit: its status, its one room line, a refresh
    of its queue and of the dashboard; and the resident's notice (accepted) is in the outbox when
    this returns.
    """
    for _attempt in range(10):
        if _claim_in_one_statement():
            claim = claim_statement.claim_next(professional=professional, now=timezone.now(), room_verb=Verb.ACCEPTED)
            if claim.case is None:
                if not claim.fresh:
                    continue
                _refuse_if_unable(claim.me, load=claim.load)
            elif claim.line is not None:
                # What `message_system` and `_transition` announce, in the same order.
                line: CaseMessageEvent = {"type": "case.message", "message": message_payload(claim.line)}
                _announce(claim.case, first=[(case_group(claim.case.pk), line)])
            if claim.case is not None:
                # The resident's notice, written by a worker within a second; the statement
                # stays one (the minute job writes it for a claim whose job never ran).
                claim_notify_soon(case_pk=claim.case.pk)
            return claim.case
        with transaction.atomic():
            me = _lock_professional(professional)
            _refuse_if_unable(me)
            try:
                case = _claim_portable(me)
            except CaseConflict:
                continue
            if case is None:
                _refuse_if_unable(me, load=_load(me))
            else:
                # The resident's notice, in the claim's own transaction here.
                case_event_notify(case=case, verbs=[Verb.ACCEPTED], actor=me.user, detail={})
            return case
    raise CaseConflict()


def _refuse_if_unable(me: Professional, *, load: int | None = None) -> None:
    """CaseError if `me` is off duty, or if their `load` (when counted) leaves no free slot."""
    if not me.on_duty:
        raise WrongState(_("Go on duty before taking cases."))
    if load is not None and load >= me.capacity:
        raise WrongState(_("You already have as many open cases as your capacity allows."))


@transaction.atomic
def case_accept(*, case: Case, professional: Professional) -> Case:
    locked = _reload_locked(case)
    _require_assignee(locked, case, professional)
    case = locked
    _transition(case, Status.ACTIVE, actor=professional.user, verb=Verb.ACCEPTED)
    return case


def _put_back(case: Case, professional: Professional, *, verb: str, actor: User | None, **detail: Any) -> None:
    """Return an assigned case to matching; it never goes back to `professional`."""
    case.declined_by.add(professional)
    _transition(
        case, Status.WAITING, actor=actor, verb=verb, assignee=None, professional=professional.user.name, **detail
    )
    _match(case)


@transaction.atomic
def case_decline(*, case: Case, professional: Professional, reason: str = "") -> Case:
    locked = _reload_locked(case)
    _require_assignee(locked, case, professional)
    case = locked
    if case.status != Status.ASSIGNED:
        raise InvalidTransition(case.status, Status.WAITING)
    _put_back(case, professional, verb=Verb.DECLINED, actor=professional.user, reason=reason)
    return case


@transaction.atomic
def case_reassign(*, case: Case, coordinator: User, professional: Professional) -> Case:
    """A coordinator gives the case to `professional`, who must then accept it."""
    if not coordinator.is_coordinator:
        raise NotAllowed(_("Only a coordinator can reassign a case."))
    case = _reload_locked(case)
    if professional.kind != case.kind or not professional.user.is_active:
        raise CaseError(_("This professional cannot take this kind of case."))
    if case.assignee_id == professional.pk:
        raise WrongState(_("The case is already assigned to this professional."))
    previous = case.assignee.user.name if case.assignee else ""
    _transition(
        case,
        Status.ASSIGNED,
        actor=coordinator,
        verb=Verb.REASSIGNED,
        assignee=professional,
        previous=previous,
        professional=professional.user.name,
    )
    professional.last_assigned_at = timezone.now()
    professional.save(update_fields=["last_assigned_at"])
    return case


@transaction.atomic
def case_resolve(*, case: Case, professional: Professional) -> Case:
    locked = _reload_locked(case)
    _require_assignee(locked, case, professional)
    case = locked
    domain = domain_of(case)
    blocker = domain.resolve_blocker(case) if domain else None
    if blocker:
        raise WrongState(blocker)
    _transition(case, Status.RESOLVED, actor=professional.user, verb=Verb.RESOLVED)
    return case


def case_close(*, case: Case, user: User) -> Case:
    """Close a resolved case and print its summary. A summary that cannot be stored right now
    does not undo the close: it can be generated again from the case page."""
    with transaction.atomic():
        case = _reload_locked(case)
        is_assignee = case.assignee is not None and case.assignee.user_id == user.pk
        if not (is_assignee or user.is_coordinator):
            raise NotAllowed(_("Only the assigned professional or a coordinator can close a case."))
        _transition(case, Status.CLOSED, actor=user, verb=Verb.CLOSED)
    if domain_of(case) is not None:
        try:
            summary_generate(case=case, actor=user)
        except files.StorageUnavailable:
            logger.warning("summary of %s not stored: storage unavailable", case.reference)
    return case


@transaction.atomic
def case_withdraw(*, case: Case, resident: User, reason: str = "") -> Case:
    case = _reload_locked(case)
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can withdraw it."))
    # Where it was, for an undo (case_reopen).
    _transition(case, Status.WITHDRAWN, actor=resident, verb=Verb.WITHDRAWN, reason=reason, previous=case.status)
    return case


@transaction.atomic
def case_details_edit(*, case: Case, resident: User, description: str) -> Case:
    """The resident corrects or adds to what they wrote, while the case is open. The intake's
    own record (medical/legal) stays as it was sent; the timeline says the details changed."""
    case = _reload_locked(case)
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can change its details."))
    if not case.is_open:
        raise WrongState(_("The case is finished: its details can no longer be changed."))
    description = description.strip()
    if description == case.description:
        return case
    case.description = description
    case.full_clean(exclude=["skill", "resident", "assignee"], validate_unique=False)
    case.save(update_fields=["description"])
    record_event(case, Verb.DETAILS_EDITED, resident)
    _announce(case)
    return case


def reopen_deadline(case: Case) -> datetime | None:
    """Until when the resident may undo withdrawing `case`; None when it is not withdrawn."""
    if case.status != Status.WITHDRAWN or case.withdrawn_at is None or case.anonymised_at is not None:
        return None
    # Withdrawn because its personal details are to be erased (privacy/services.py): no undo, the
    # erasure is decided by a coordinator.
    if case.events.filter(verb=Verb.ERASURE_REQUESTED, created_at__gte=case.withdrawn_at).exists():
        return None
    return case.withdrawn_at + timedelta(minutes=settings.CASE_REOPEN_MINUTES)


@transaction.atomic
def case_reopen(*, case: Case, resident: User) -> Case:
    """Undo a withdrawal within settings.CASE_REOPEN_MINUTES: the case goes back to where it was,
    to the professional who had it (an undo of a slip, not a new request: they keep their case
    even if it puts them one over capacity for a while), or to matching when it had nobody or they
    left. The withdrawal stays in the timeline, followed by the reopening."""
    case = _reload_locked(case)
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can reopen it."))
    if case.status != Status.WITHDRAWN:
        raise WrongState(_("This case is not withdrawn."))
    deadline = reopen_deadline(case)
    if deadline is None or timezone.now() > deadline:
        raise WrongState(_("The time to undo the withdrawal has passed. Please open a new case."))
    withdrawal = case.events.filter(verb=Verb.WITHDRAWN).order_by("-created_at", "-id").first()
    previous = withdrawal.detail.get("previous") if withdrawal else None
    if previous is None:  # withdrawn before the status was kept: read it from the stamps
        if case.assignee_id is None:
            previous = Status.WAITING
        else:
            previous = Status.ACTIVE if case.accepted_at else Status.ASSIGNED
    keeps_assignee = (
        previous in (Status.ASSIGNED, Status.ACTIVE)
        and case.assignee is not None
        and case.assignee.user.is_active
    )
    if keeps_assignee:
        _transition(case, previous, actor=resident, verb=Verb.REOPENED)
    else:
        _transition(case, Status.WAITING, actor=resident, verb=Verb.REOPENED, assignee=None)
    # No longer withdrawn: the figures and the retention rules must not count it as such.
    Case.objects.filter(pk=case.pk).update(withdrawn_at=None)
    case.withdrawn_at = None
    tally_refresh(case)
    if not keeps_assignee:
        _match(case)
    return case


def case_sweep_unaccepted(*, timeout: timedelta | None = None) -> int:
    """Put every case assigned but not accepted within `timeout` back to matching.
    Returns how many were put back."""
    if timeout is None:
        timeout = timedelta(minutes=settings.ACCEPT_TIMEOUT_MINUTES)
    cutoff = timezone.now() - timeout
    swept = 0
    stale = Case.objects.filter(status=Status.ASSIGNED, assigned_at__lt=cutoff).values_list("pk", flat=True)
    for pk in list(stale):
        with transaction.atomic():
            case = Case.objects.select_for_update(of=("self",)).select_related("assignee__user").get(pk=pk)
            if case.status != Status.ASSIGNED or case.assigned_at is None or case.assigned_at >= cutoff:
                continue
            assert case.assignee is not None
            _put_back(case, case.assignee, verb=Verb.TIMED_OUT, actor=None)
            swept += 1
    return swept

"""The case state machine: every (from, to) pair, and the role rules of the public services."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from consult import services
from consult.errors import CaseConflict, CaseError, InvalidTransition
from consult.models import STATUS_TIMESTAMP, TRANSITIONS, Case, Professional, Status, User, Verb
from medical.services import note_save

S = Status


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """The cast's accounts are not under test here: spare each test the production-strength hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The machine as DESIGN.md draws it: submitted → waiting → assigned → active → resolved → closed,
# withdrawn from any open status, a decline or timeout puts an assigned case back to waiting, and a
# reassignment is assigned/active → assigned. Written out here so a change to TRANSITIONS is noticed.
# (Undoing a withdrawal is not in the table: only the resident's reopen takes that step,
# tests/consult/test_case_page.py.)
DESIGNED = {
    (S.SUBMITTED, S.WAITING), (S.SUBMITTED, S.ASSIGNED), (S.SUBMITTED, S.WITHDRAWN),
    (S.WAITING, S.ASSIGNED), (S.WAITING, S.WITHDRAWN),
    (S.ASSIGNED, S.ACTIVE), (S.ASSIGNED, S.WAITING), (S.ASSIGNED, S.ASSIGNED), (S.ASSIGNED, S.WITHDRAWN),
    (S.ACTIVE, S.RESOLVED), (S.ACTIVE, S.ASSIGNED), (S.ACTIVE, S.WITHDRAWN),
    (S.RESOLVED, S.CLOSED),
}

ALL_PAIRS = [(source, target) for source in TRANSITIONS for target in TRANSITIONS]
ALLOWED = [(source, target) for source, target in ALL_PAIRS if target in TRANSITIONS[source]]
REFUSED = [(source, target) for source, target in ALL_PAIRS if target not in TRANSITIONS[source]]

VERB_FOR = {
    S.SUBMITTED: Verb.SUBMITTED,
    S.WAITING: Verb.WAITING,
    S.ASSIGNED: Verb.ASSIGNED,
    S.ACTIVE: Verb.ACCEPTED,
    S.RESOLVED: Verb.RESOLVED,
    S.CLOSED: Verb.CLOSED,
    S.WITHDRAWN: Verb.WITHDRAWN,
}


def _ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{source}->{target}" for source, target in pairs]


def put(case: Case, status: str, **fields: Any) -> Case:
    """Set the row's status directly (the "from" state of a test) and reload the instance."""
    Case.objects.filter(pk=case.pk).update(status=status, **fields)
    case.refresh_from_db()
    return case


def write_note(case: Case, doctor: Professional) -> None:
    """A medical case is resolved only once the doctor has written the consultation note."""
    note_save(
        case=case, professional=doctor, findings="胸片未见异常。", impression="急性支气管炎。", advice="多喝水，休息。"
    )


def row_of(case: Case) -> dict[str, Any]:
    return dict(Case.objects.filter(pk=case.pk).values().get())


def snapshot(case: Case) -> tuple[dict[str, Any], list[int], list[int]]:
    """Everything a refused action must leave as it was: the row, its events, its decliners."""
    row = row_of(case)
    events = list(case.events.values_list("pk", flat=True))
    declined = list(case.declined_by.values_list("pk", flat=True))
    return row, events, declined


# --- the table ----------------------------------------------------------------------------


def test_it_knows_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert set(STATUS_TIMESTAMP) == set(Status)


def test_it_allows_exactly_the_designed_transitions() -> None:
    assert set(ALLOWED) == DESIGNED
    assert len(ALLOWED) + len(REFUSED) == len(Status) ** 2


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=_ids(ALLOWED))
def test_it_moves_a_case_along_an_allowed_transition_stamping_its_time_and_recording_an_event(
    case: Case, coordinator: User, source: str, target: str
) -> None:
    timestamp = STATUS_TIMESTAMP[Status(target)]
    put(case, source, **{timestamp: None})
    row_before = row_of(case)
    events_before = case.events.count()

    before = timezone.now()
    services._transition(case, target, actor=coordinator, verb=VERB_FOR[Status(target)], note="by test")
    after = timezone.now()

    row = Case.objects.get(pk=case.pk)
    assert row.status == target
    stamped = getattr(row, timestamp)
    assert stamped is not None
    assert before <= stamped <= after
    # Generated columns (the figures' stored waits) follow the timestamps they are computed from.
    generated = {f.attname for f in Case._meta.concrete_fields if f.generated}
    changed = {k for k, v in row_of(case).items() if row_before[k] != v} - generated
    # last_seq: a status change is also announced as a numbered line in the case room.
    assert changed <= {"status", timestamp, "first_response_at", "last_seq"}
    assert row.events.count() == events_before + 1
    event = row.events.last()
    assert event is not None
    assert (event.verb, event.actor, event.detail) == (VERB_FOR[Status(target)], coordinator, {"note": "by test"})


@pytest.mark.parametrize(("source", "target"), REFUSED, ids=_ids(REFUSED))
def test_it_refuses_a_transition_the_machine_does_not_allow_and_leaves_the_row_unchanged(
    case: Case, coordinator: User, source: str, target: str
) -> None:
    put(case, source)
    before = snapshot(case)

    with pytest.raises(InvalidTransition) as caught:
        services._transition(case, target, actor=coordinator, verb=VERB_FOR[Status(target)])

    assert (caught.value.current, caught.value.target) == (source, target)
    assert case.status == source
    assert snapshot(case) == before


def test_it_sets_the_assignee_given_with_the_transition(case: Case, other_doctor: Professional) -> None:
    services._transition(case, Status.ASSIGNED, actor=None, verb=Verb.REASSIGNED, assignee=other_doctor)

    assert Case.objects.get(pk=case.pk).assignee == other_doctor


def test_it_keeps_the_first_response_time_when_a_case_is_accepted_again(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User
) -> None:
    services.case_accept(case=case, professional=doctor)
    first = Case.objects.get(pk=case.pk)
    assert first.first_response_at == first.accepted_at is not None

    services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)
    services.case_accept(case=case, professional=other_doctor)

    again = Case.objects.get(pk=case.pk)
    assert again.first_response_at == first.first_response_at
    assert again.accepted_at is not None and first.accepted_at is not None
    assert again.accepted_at > first.accepted_at


# --- a stale in-memory case ---------------------------------------------------------------


def test_it_refuses_a_stale_case_whose_status_changed_underneath(case: Case, doctor: Professional) -> None:
    stale = Case.objects.get(pk=case.pk)
    services.case_accept(case=case, professional=doctor)
    after_accept = snapshot(case)

    with pytest.raises(CaseConflict):
        services._transition(stale, Status.ACTIVE, actor=doctor.user, verb=Verb.ACCEPTED)

    assert snapshot(case) == after_accept
    assert case.events.filter(verb=Verb.ACCEPTED).count() == 1


def test_it_refuses_a_stale_case_whose_assignee_changed_underneath(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User
) -> None:
    stale = Case.objects.get(pk=case.pk)
    services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)
    after_reassign = snapshot(case)

    # Same status as when it was read, but no longer the same assignee: doctor must not accept it.
    with pytest.raises(CaseConflict):
        services._transition(stale, Status.ACTIVE, actor=doctor.user, verb=Verb.ACCEPTED)

    assert snapshot(case) == after_reassign
    assert Case.objects.get(pk=case.pk).assignee == other_doctor


# --- accept, decline, resolve: the assignee only -------------------------------------------


def test_it_lets_the_assignee_accept(case: Case, doctor: Professional) -> None:
    services.case_accept(case=case, professional=doctor)

    row = Case.objects.get(pk=case.pk)
    assert row.status == Status.ACTIVE
    assert row.first_response_at is not None
    event = row.events.last()
    assert event is not None
    assert (event.verb, event.actor) == (Verb.ACCEPTED, doctor.user)


@pytest.mark.parametrize("outsider", ["other_doctor", "lawyer"])
def test_it_refuses_accept_decline_and_resolve_from_a_professional_who_is_not_the_assignee(
    case: Case, outsider: str, request: pytest.FixtureRequest
) -> None:
    professional: Professional = request.getfixturevalue(outsider)
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_accept(case=case, professional=professional)
    with pytest.raises(CaseError):
        services.case_decline(case=case, professional=professional)
    assert snapshot(case) == before

    put(case, Status.ACTIVE)
    before_resolve = snapshot(case)
    with pytest.raises(CaseError):
        services.case_resolve(case=case, professional=professional)
    assert snapshot(case) == before_resolve


def test_it_refuses_to_decline_a_case_already_accepted(case: Case, doctor: Professional) -> None:
    services.case_accept(case=case, professional=doctor)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_decline(case=case, professional=doctor)

    assert snapshot(case) == before


def test_it_lets_the_assignee_resolve_an_accepted_case(case: Case, doctor: Professional) -> None:
    services.case_accept(case=case, professional=doctor)
    write_note(case, doctor)

    services.case_resolve(case=case, professional=doctor)

    row = Case.objects.get(pk=case.pk)
    assert row.status == Status.RESOLVED
    assert row.resolved_at is not None


def test_it_refuses_to_resolve_a_case_not_yet_accepted(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User
) -> None:
    # The note is written: only the state machine stands between the new assignee and "resolved".
    services.case_accept(case=case, professional=doctor)
    write_note(case, doctor)
    services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_resolve(case=case, professional=other_doctor)

    assert snapshot(case) == before


# --- withdraw: the owner only, while the case is open --------------------------------------


@pytest.mark.parametrize("status", [Status.SUBMITTED, Status.WAITING, Status.ASSIGNED, Status.ACTIVE])
def test_it_lets_the_owner_withdraw_an_open_case(case: Case, alice: User, status: str) -> None:
    put(case, status)

    services.case_withdraw(case=case, resident=alice, reason="好了")

    row = Case.objects.get(pk=case.pk)
    assert row.status == Status.WITHDRAWN
    assert row.withdrawn_at is not None
    event = row.events.last()
    assert event is not None
    # Where it was, kept for an undo.
    assert (event.verb, event.actor, event.detail) == (Verb.WITHDRAWN, alice, {"reason": "好了", "previous": status})


@pytest.mark.parametrize("outsider", ["bob", "coordinator"])
def test_it_refuses_a_withdrawal_by_anyone_but_the_owner(
    case: Case, outsider: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(outsider)
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_withdraw(case=case, resident=user)

    assert snapshot(case) == before


def test_it_refuses_a_withdrawal_by_the_assigned_doctor(case: Case, doctor: Professional) -> None:
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_withdraw(case=case, resident=doctor.user)

    assert snapshot(case) == before


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.CLOSED, Status.WITHDRAWN])
def test_it_refuses_a_withdrawal_once_the_case_is_resolved_or_over(case: Case, alice: User, status: str) -> None:
    put(case, status)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_withdraw(case=case, resident=alice)

    assert snapshot(case) == before


# --- close: resolved first, then the assignee or a coordinator -----------------------------


@pytest.mark.parametrize("closer", ["doctor", "coordinator"])
def test_it_lets_the_assignee_or_a_coordinator_close_a_resolved_case(
    case: Case, closer: str, request: pytest.FixtureRequest
) -> None:
    who = request.getfixturevalue(closer)
    user: User = who.user if isinstance(who, Professional) else who
    put(case, Status.RESOLVED)

    services.case_close(case=case, user=user)

    row = Case.objects.get(pk=case.pk)
    assert row.status == Status.CLOSED
    assert row.closed_at is not None
    assert row.events.get(verb=Verb.CLOSED).actor == user


@pytest.mark.parametrize("outsider", ["alice", "bob", "other_doctor", "lawyer"])
def test_it_refuses_to_close_for_anyone_but_the_assignee_or_a_coordinator(
    case: Case, outsider: str, request: pytest.FixtureRequest
) -> None:
    who = request.getfixturevalue(outsider)
    user: User = who.user if isinstance(who, Professional) else who
    put(case, Status.RESOLVED)
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_close(case=case, user=user)

    assert snapshot(case) == before


@pytest.mark.parametrize("status", [Status.ASSIGNED, Status.ACTIVE])
@pytest.mark.parametrize("closer", ["doctor", "coordinator"])
def test_it_refuses_to_close_a_case_that_is_not_resolved(
    case: Case, closer: str, status: str, request: pytest.FixtureRequest
) -> None:
    who = request.getfixturevalue(closer)
    user: User = who.user if isinstance(who, Professional) else who
    put(case, status)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_close(case=case, user=user)

    assert snapshot(case) == before


# --- reassign: coordinators only, within the case's kind -----------------------------------


@pytest.mark.parametrize("status", [Status.WAITING, Status.ASSIGNED, Status.ACTIVE])
def test_it_lets_a_coordinator_reassign_a_case_to_another_professional(
    case: Case, doctor: Professional, other_doctor: Professional, coordinator: User, status: str
) -> None:
    put(case, status)

    services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)

    row = Case.objects.get(pk=case.pk)
    assert (row.status, row.assignee) == (Status.ASSIGNED, other_doctor)
    other_doctor.refresh_from_db()
    assert other_doctor.last_assigned_at is not None
    event = row.events.last()
    assert event is not None
    assert (event.verb, event.actor, event.detail["professional"]) == (
        Verb.REASSIGNED, coordinator, other_doctor.user.name,
    )


@pytest.mark.parametrize("outsider", ["alice", "doctor", "other_doctor"])
def test_it_refuses_a_reassignment_by_anyone_but_a_coordinator(
    case: Case, other_doctor: Professional, outsider: str, request: pytest.FixtureRequest
) -> None:
    who = request.getfixturevalue(outsider)
    user: User = who.user if isinstance(who, Professional) else who
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_reassign(case=case, coordinator=user, professional=other_doctor)

    assert snapshot(case) == before


def test_it_refuses_to_reassign_a_medical_case_to_a_lawyer(
    case: Case, lawyer: Professional, coordinator: User
) -> None:
    before = snapshot(case)

    with pytest.raises(CaseError):
        services.case_reassign(case=case, coordinator=coordinator, professional=lawyer)

    assert snapshot(case) == before


def test_it_refuses_to_reassign_a_resolved_case(
    case: Case, other_doctor: Professional, coordinator: User
) -> None:
    put(case, Status.RESOLVED)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_reassign(case=case, coordinator=coordinator, professional=other_doctor)

    assert snapshot(case) == before

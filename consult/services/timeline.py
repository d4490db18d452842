"""The case timeline: one line per thing that happened, who did it and when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consult.models import Case, CaseEvent, User, Verb
from consult.services.messages import message_system
from notices.case_notices import case_event_notify

# What also appears in the case room as a status line. Not "viewed a document": an audit entry,
# not news for the other side.
ROOM_VERBS = frozenset(
    {
        Verb.ASSIGNED,
        Verb.CLAIMED,
        Verb.ACCEPTED,
        Verb.DECLINED,
        Verb.TIMED_OUT,
        Verb.REASSIGNED,
        Verb.RESOLVED,
        Verb.CLOSED,
        Verb.WITHDRAWN,
        Verb.REOPENED,
        Verb.DETAILS_EDITED,
        Verb.DOCUMENT_ADDED,
        Verb.SUMMARY_GENERATED,
        Verb.NOTE_SAVED,
        Verb.VISIT_REQUESTED,
        Verb.VISIT_SCHEDULED,
        Verb.VISIT_DONE,
        Verb.VISIT_CANCELLED,
        Verb.EMPLOYER_CONTACTED,
        Verb.MEDIATION_HELD,
        Verb.OUTCOME_RECORDED,
        Verb.PAYMENT_RECEIVED,
        Verb.REFERRAL_SUGGESTED,
    }
)


def record_event(case: Case, verb: str, actor: User | None, **detail: Any) -> CaseEvent:
    """Add a line to the case's timeline and audit trail (and to its room, for status changes)."""
    event = CaseEvent.objects.create(case=case, verb=verb, actor=actor, detail=detail)
    if verb in ROOM_VERBS:
        message_system(case=case, verb=verb, actor=actor, detail=detail)
    # The notices it causes (SMS, e-mail), in the same transaction: they commit with the line.
    case_event_notify(case=case, verbs=[verb], actor=actor, detail=detail)
    return event


def record_events(case: Case, actor: User | None, steps: Sequence[tuple[str, dict[str, Any]]]) -> list[CaseEvent]:
    """Lines for steps one person took in one action (a claim: taken from the line and accepted):
    every step in the timeline, in one insert, and one room line, the last step's: the other side
    sees what the case has become, not each step of a single click.

    A claim's notice to the resident (accepted) is not written here but by a job the claim queues
    (notices.tasks.claim_notify_soon): a claim stays one statement on PostgreSQL."""
    events = CaseEvent.objects.bulk_create(
        [CaseEvent(case=case, verb=verb, actor=actor, detail=detail) for verb, detail in steps]
    )
    room = [(verb, detail) for verb, detail in steps if verb in ROOM_VERBS]
    if room:
        verb, detail = room[-1]
        message_system(case=case, verb=verb, actor=actor, detail=detail)
    return events

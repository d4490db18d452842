"""The case timeline: one line per thing that happened, who did it and when."""

from __future__ import annotations

from typing import Any

from consult.models import (
    Case,
    CaseEvent,
    User,
)


def record_event(case: Case, verb: str, actor: User | None, **detail: Any) -> CaseEvent:
    """Add a line to the case's timeline and audit trail."""
    return CaseEvent.objects.create(case=case, verb=verb, actor=actor, detail=detail)

"""Erasure requests on pages whose views belong to other apps: the case page and the dashboard."""

from __future__ import annotations

from typing import Any

from django import template

from privacy.forms import ErasureDecisionForm, ErasureRequestForm
from privacy.models import ErasureRequest
from privacy.selectors import erasure_of_case, erasure_requests_pending

register = template.Library()


@register.simple_tag
def case_erasure(case: Any, user: Any) -> dict[str, Any] | None:
    """What the case page shows of erasure: to its resident, the request (or the form to make one);
    to a coordinator of its domain, the request waiting for them (and the form to decide).
    Nothing to anyone else. The page's view has already checked that `user` sees the case."""
    if case.resident_id != user.pk and case.kind not in user.coordinated_kinds:
        return None  # read nothing for the doctors and lawyers
    request = erasure_of_case(case=case)
    if case.resident_id == user.pk:
        can_ask = case.anonymised_at is None and (request is None or not request.is_pending)
        # Ids of their own: the case page has other forms with a "reason".
        ask = ErasureRequestForm(auto_id="erasure_%s") if can_ask else None
        return {"request": request, "ask_form": ask, "mine": True}
    if request is not None:
        decide = ErasureDecisionForm(auto_id="erasure_%s") if request.is_pending else None
        return {"request": request, "decide_form": decide}
    return None


@register.simple_tag
def erasures_pending(user: Any) -> list[ErasureRequest]:
    return list(erasure_requests_pending(user=user))

"""The outbox on pages whose views belong to other apps: the case page (staff) and the
coordinators' dashboard."""

from __future__ import annotations

from typing import Any

from django import template

from notices.models import Notice
from notices.selectors import notices_for_case, notices_needing_attention

register = template.Library()


@register.simple_tag
def case_notices(case: Any, user: Any) -> list[Notice]:
    """The case's notices for a professional or coordinator; nothing for a resident."""
    if not (user.is_professional or user.is_coordinator):
        return []
    return notices_for_case(case=case)


@register.simple_tag
def notices_failed(user: Any) -> list[Notice]:
    """For the dashboard: those of the coordinator's domains."""
    return notices_needing_attention(kinds=user.coordinated_kinds)

"""What each domain (medical, legal) plugs into the shared case flow.

The core knows that a case has an intake page, may need an outcome before it is resolved, and has
a printable summary; `medical/` and `legal/` say what those are for their kind of case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django_stubs_ext import StrOrPromise

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpRequest, HttpResponse

    from consult.models import Case, Skill


@dataclass(frozen=True)
class Domain:
    kind: str
    # The intake page for a service of this kind.
    intake_view: Callable[[HttpRequest, Skill], HttpResponse]
    # Why the case cannot be resolved yet (the outcome is missing), or None.
    resolve_blocker: Callable[[Case], str | None]
    # The summary PDF's template and context, rendered in the resident's language.
    summary: Callable[[Case], tuple[str, dict[str, Any]]]
    # Extra context for the case page (the note, the visit, the settlement...).
    case_context: Callable[[Case, Any], dict[str, Any]]
    # The template included in the case page for this domain.
    case_template: str
    # What the summary is called, for its file name ("Consultation summary", "Mediation record").
    summary_title: StrOrPromise
    # This domain's own figures over a set of cases (aggregate queries only).
    figures: Callable[[QuerySet[Case]], dict[str, Any]]
    # What the domain adds to a case's API detail.
    api_data: Callable[[Case, Any], dict[str, Any]]


DOMAINS: dict[str, Domain] = {}


def register(domain: Domain) -> None:
    DOMAINS[domain.kind] = domain


def domain_of(case_or_kind: Case | str) -> Domain | None:
    kind = case_or_kind if isinstance(case_or_kind, str) else case_or_kind.kind
    return DOMAINS.get(kind)

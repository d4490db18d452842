"""Reads for personal information: the consent texts in force, erasure requests."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from consult.models import Case, User
from privacy.models import ConsentText, ErasureRequest, ErasureStatus
from privacy.texts import INITIAL

# The newest text the code brings for each purpose.
INITIAL_VERSION = {t["purpose"]: max(u["version"] for u in INITIAL if u["purpose"] == t["purpose"]) for t in INITIAL}


def _ensure_initial(purpose: str) -> None:
    # The first texts come with the code: a database without any (a fresh one, or a test database
    # emptied between tests) gets them on first use rather than an intake that cannot open.
    for text in INITIAL:
        if text["purpose"] == purpose:
            try:
                with transaction.atomic():
                    ConsentText.objects.get_or_create(purpose=purpose, version=text["version"], defaults=dict(text))
            except IntegrityError:
                pass  # made by a concurrent request


def consent_text_current(*, purpose: str) -> ConsentText:
    """The version of a purpose's text that an intake shows now: the highest published one."""
    text = ConsentText.objects.filter(purpose=purpose).order_by("-version").first()
    if text is None or text.version < INITIAL_VERSION.get(purpose, 0):
        _ensure_initial(purpose)
        text = ConsentText.objects.filter(purpose=purpose).order_by("-version").first()
    assert text is not None
    return text


def erasure_requests_pending(*, user: User) -> QuerySet[ErasureRequest]:
    """The requests waiting for a decision that `user` may make: those on cases of the domains
    they coordinate (none for anyone else), oldest first."""
    return (
        ErasureRequest.objects.filter(status=ErasureStatus.PENDING, case__kind__in=sorted(user.coordinated_kinds))
        .select_related("case", "case__skill", "requested_by")
        .order_by("created_at", "pk")
    )


def erasure_of_case(*, case: Case) -> ErasureRequest | None:
    """The case's latest erasure request (call after the access check)."""
    return ErasureRequest.objects.filter(case=case).select_related("decided_by").order_by("-created_at", "-pk").first()

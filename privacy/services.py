"""Writes for personal information (PIPL): consents, erasure requests."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from consult.errors import CaseError, NotAllowed
from consult.models import Case, User, Verb
from consult.services.timeline import record_event
from privacy.models import Consent, ConsentChannel, ErasureRequest, ErasureStatus
from privacy.selectors import consent_text_current

CONSENT_TEXT_CHANGED = _(
    "The consent text has changed since this page was opened. Please read it again and agree to it."
)


def _language_shown() -> str:
    language = (get_language() or settings.LANGUAGE_CODE).lower()
    return "en" if language.startswith("en") else "zh-hans"


def consent_record(
    *,
    case: Case,
    purpose: str,
    given_by: User,
    version: int | None,
    channel: str = ConsentChannel.PAGE,
    language: str | None = None,
) -> Consent:
    """Record the consent given for `purpose` on a new case: the text's version the person was
    shown (`version`; None from code that shows no text, such as the demo data: the current one),
    in the language of the request. Call inside the transaction that opens the case.

    Raises CaseError when `version` is not the current text: consent to words no longer in force is
    not taken as consent to the present ones."""
    text = consent_text_current(purpose=purpose)
    if version is not None and version != text.version:
        raise CaseError(CONSENT_TEXT_CHANGED, code="consent_text_changed")
    consent = Consent(
        case=case,
        purpose=purpose,
        text=text,
        given_by=given_by,
        given_at=timezone.now(),
        language=language or _language_shown(),
        channel=channel,
    )
    consent.full_clean()
    consent.save()
    return consent


def erasure_request(*, case: Case, resident: User, reason: str = "") -> ErasureRequest:
    """The resident asks that the case's personal details be erased. An open case is withdrawn
    with it (nobody works on a case whose details are to go). Asking again while a request waits
    returns that request. Raises CaseError when the case is not theirs or is already anonymised."""
    from consult import services as core

    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.resident_id != resident.pk:
            # Refused for who asks: the API's 403, as for every "not_resident".
            raise NotAllowed(_("Only the resident who opened the case can ask for its erasure."), code="not_resident")
        if case.anonymised_at is not None:
            raise CaseError(_("The personal details of this case were already removed."), code="already_anonymised")
        pending = ErasureRequest.objects.filter(case=case, status=ErasureStatus.PENDING).first()
        if pending is not None:
            return pending
        if case.is_open:
            core.case_withdraw(case=case, resident=resident, reason=str(_("Erasure of the personal details asked.")))
        request = ErasureRequest(case=case, requested_by=resident, reason=reason.strip())
        request.full_clean()
        request.save()
        record_event(case, Verb.ERASURE_REQUESTED, resident, request=request.pk)
    return request


def erasure_decide(*, request: ErasureRequest, coordinator: User, approve: bool, answer: str = "") -> ErasureRequest:
    """A coordinator of the case's domain approves the request (the case is anonymised as at the
    end of its retention, privacy/anonymise.py) or refuses it with a reason. Either way the
    resident is told (a notice from the timeline line) and the request keeps who decided, when and
    the answer. Call after the access check (case_get_for_user) for `coordinator`."""
    from privacy.anonymise import case_anonymise

    case = request.case
    if case.kind not in coordinator.coordinated_kinds:
        raise CaseError(_("Only a coordinator of this kind of case can decide."), code="not_coordinator")
    answer = answer.strip()
    if not approve and not answer:
        raise CaseError(_("Say why the request is refused: the resident is told."), code="reason_required")
    if approve:
        # First, in its own transaction, with the files deleted after it commits; anonymising is
        # idempotent, so a decision that fails below can be made again.
        case_anonymise(case=case, actor=coordinator, erasure_request=request.pk)
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(pk=request.pk)
        if not request.is_pending:
            raise CaseError(_("This request was already answered."), code="already_decided")
        request.status = ErasureStatus.APPROVED if approve else ErasureStatus.REFUSED
        request.decided_by = coordinator
        request.decided_at = timezone.now()
        request.answer = answer
        if approve:
            request.reason = ""  # the resident's own words go with the rest
        request.full_clean()
        request.save()
        record_event(
            case, Verb.ERASURE_APPROVED if approve else Verb.ERASURE_REFUSED, coordinator, request=request.pk
        )
    return request

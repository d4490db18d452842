"""Writes for medical consultations: intake, the doctor's note, home visits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult import intake
from consult import services as core
from consult.errors import CaseError, NotAllowed, WrongState
from consult.intake import Staged
from consult.models import Case, Kind, Priority, Professional, Skill, Status, User, Verb
from medical.models import ConsultationNote, HomeVisit, MedicalIntake, VisitStatus
from privacy.models import ConsentChannel, Purpose
from privacy.services import consent_record

ELDERLY_AGE = 65
NOTE_FIELDS = (
    "findings",
    "impression",
    "advice",
    "recommended_tests",
    "urgency",
    "follow_up_date",
    "referral_hospital",
    "referral_department",
)


def medical_case_submit(
    *,
    resident: User,
    skill: Skill,
    complaint: str,
    since_when: str,
    patient_age: int,
    patient_sex: str,
    health_consent: bool,
    on_behalf: bool = False,
    relationship: str = "",
    patient_name: str = "",
    conditions: str = "",
    medicines: str = "",
    allergies: str = "",
    urgent_signs: list[str] | None = None,
    staged: list[Staged] | None = None,
    source_place: str = "",
    consent_version: int | None = None,
    consent_channel: str = ConsentChannel.PAGE,
) -> tuple[Case, list[str]]:
    """Open a medical consultation and attach the intake's documents.

    Urgent signs make the case urgent; a patient of 65 or more makes it elderly. The separate
    consent to health information is recorded with the version of its text that was shown
    (`consent_version`, see privacy.services.consent_record). Returns the case and a message for
    each document that could not be attached (the case stands regardless). Raises
    StorageUnavailable, with nothing created, when the file store fails.
    """
    if not health_consent:
        raise CaseError(_("Consent to process health information is required."))
    if skill.kind != Kind.MEDICAL:
        raise CaseError(_("Choose a medical specialty."))
    urgent_signs = urgent_signs or []
    if urgent_signs:
        priority = Priority.URGENT
    elif patient_age >= ELDERLY_AGE:
        priority = Priority.ELDERLY
    else:
        priority = Priority.NORMAL
    # Files first, outside the transaction (the store may be slow or down); then the case and
    # its documents together: a store failure leaves nothing half-saved.
    with core.documents_for_intake(uploader=resident, staged=staged or []) as documents:
        with transaction.atomic():
            case = core.case_submit(
                resident=resident, skill=skill, description=complaint, priority=priority, source_place=source_place
            )
            intake = MedicalIntake(
                case=case,
                on_behalf=on_behalf,
                relationship=relationship if on_behalf else "",
                patient_name=(patient_name if on_behalf else "") or resident.name,
                patient_age=patient_age,
                patient_sex=patient_sex,
                complaint=complaint,
                since_when=since_when,
                conditions=conditions,
                medicines=medicines,
                allergies=allergies,
                urgent_signs=urgent_signs,
                health_consent_at=timezone.now(),
            )
            intake.full_clean(exclude=["case"])
            intake.save()
            consent_record(
                case=case, purpose=Purpose.HEALTH, given_by=resident, version=consent_version, channel=consent_channel
            )
            problems = documents.attach(case)
    return case, problems


def medical_case_from_form(
    *,
    resident: User,
    data: dict[str, Any],
    staged: list[Staged] | None = None,
    source_place: str = "",
    channel: str = ConsentChannel.PAGE,
) -> tuple[Case, list[str]]:
    """Open a case from the intake form's cleaned data: the page and the API both come here."""
    fields = {k: v for k, v in data.items() if k not in ("skill", "materials_later")}
    return medical_case_submit(
        resident=resident, skill=data["skill"], staged=staged, source_place=source_place, consent_channel=channel,
        **fields,
    )


def _require_medical(case: Case) -> None:
    if case.kind != Kind.MEDICAL:
        raise CaseError(_("This is not a medical consultation."), code="wrong_kind")


def _as_text(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return "" if value is None else str(value)


@transaction.atomic
def note_save(*, case: Case, professional: Professional, **fields: Any) -> ConsultationNote:
    """Write or rewrite the consultation note. Each version is recorded whole in the timeline."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require_medical(case)
    if case.assignee_id != professional.pk:
        raise NotAllowed(_("Only the doctor the case is assigned to can write the note."))
    if case.status not in (Status.ACTIVE, Status.RESOLVED):
        raise WrongState(_("Accept the case before writing the note."))
    unknown = set(fields) - set(NOTE_FIELDS)
    if unknown:
        raise TypeError(f"unknown note fields: {sorted(unknown)}")
    note = ConsultationNote.objects.filter(case=case).first()
    if note is None:
        note = ConsultationNote(case=case, author=professional, version=0)
    for name, value in fields.items():
        setattr(note, name, value)
    note.author = professional
    note.version += 1
    note.updated_at = timezone.now()
    note.full_clean(exclude=["case", "author"])
    note.save()
    core.record_event(
        case,
        Verb.NOTE_SAVED,
        professional.user,
        version=note.version,
        **{name: _as_text(getattr(note, name)) for name in NOTE_FIELDS},
    )
    return note


def _can_arrange(case: Case, user: User) -> bool:
    return user.is_coordinator or (case.assignee is not None and case.assignee.user_id == user.pk)


@transaction.atomic
def home_visit_request(*, case: Case, resident: User, address: str, preferred_dates: str) -> HomeVisit:
    _require_medical(case)
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can ask for a home visit."))
    if not case.is_open:
        raise WrongState(_("This case is finished."))
    if HomeVisit.objects.filter(case=case, status__in=(VisitStatus.REQUESTED, VisitStatus.SCHEDULED)).exists():
        raise WrongState(_("A home visit is already requested for this case."))
    visit = HomeVisit(case=case, requested_by=resident, address=address, preferred_dates=preferred_dates)
    visit.full_clean(exclude=["case", "requested_by"])
    visit.save()
    core.record_event(case, Verb.VISIT_REQUESTED, resident, preferred_dates=preferred_dates)
    return visit


@transaction.atomic
def home_visit_schedule(*, visit: HomeVisit, user: User, scheduled_for: datetime) -> HomeVisit:
    visit = HomeVisit.objects.select_for_update(of=("self",)).select_related("case__assignee").get(pk=visit.pk)
    if not _can_arrange(visit.case, user):
        raise NotAllowed(_("Only the assigned doctor or a coordinator can schedule the visit."))
    if not visit.is_open:
        raise WrongState(_("This visit is already done or cancelled."))
    if scheduled_for < timezone.now():
        raise CaseError(_("Choose a time in the future."))
    visit.status = VisitStatus.SCHEDULED
    visit.scheduled_for = scheduled_for
    visit.updated_at = timezone.now()
    visit.save(update_fields=["status", "scheduled_for", "updated_at"])
    core.record_event(visit.case, Verb.VISIT_SCHEDULED, user, scheduled_for=scheduled_for.isoformat())
    return visit


@transaction.atomic
def home_visit_finish(*, visit: HomeVisit, user: User, status: str) -> HomeVisit:
    """Mark the visit done (doctor or coordinator) or cancelled (they, or the resident)."""
    visit = HomeVisit.objects.select_for_update(of=("self",)).select_related("case__assignee").get(pk=visit.pk)
    if status == VisitStatus.DONE:
        allowed = _can_arrange(visit.case, user) and visit.status == VisitStatus.SCHEDULED
        verb = Verb.VISIT_DONE
    elif status == VisitStatus.CANCELLED:
        allowed = (_can_arrange(visit.case, user) or visit.case.resident_id == user.pk) and visit.is_open
        verb = Verb.VISIT_CANCELLED
    else:
        raise CaseError(_("A visit can only be marked done or cancelled."))
    if not allowed:
        raise CaseError(_("This visit cannot be changed that way."))
    visit.status = status
    visit.updated_at = timezone.now()
    visit.save(update_fields=["status", "updated_at"])
    core.record_event(visit.case, verb, user)
    return visit


# --- referral to the union's lawyers (an injury at work) -------------------------------------


def referral_suggest(*, case: Case, user: User) -> None:
    """The doctor tells the resident, in the room and on the timeline, that an injury at work may
    give a claim: the resident starts it (`referral_carry`), choosing what goes across."""
    _require_medical(case)
    if case.assignee is None or case.assignee.user_id != user.pk:
        raise NotAllowed(_("Only the case's doctor can suggest this."))
    if case.anonymised_at is not None:
        raise WrongState(_("This case is finished."))
    core.record_event(case, Verb.REFERRAL_SUGGESTED, user)


def referral_carry(*, case: Case, resident: User, document_ids: Sequence[int]) -> list[Staged]:
    """Copies of the documents of `case` the resident chose to carry to a labour dispute, parked
    for its intake (consult/intake.py): nothing else of the consultation goes across. Raises
    StorageUnavailable when the file store fails."""
    _require_medical(case)
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can ask the union's lawyers."))
    if case.anonymised_at is not None:
        raise WrongState(_("This case is finished."))
    chosen = list(case.documents.filter(pk__in=document_ids).order_by("pk"))
    return intake.carry(user=resident, documents=chosen)

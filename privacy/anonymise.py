"""Anonymising a case: what PIPL asks once the retention period is over (art. 19, art. 47) or an
erasure is granted. The personal details go: names, what was told, the doctor's and lawyer's
texts, chat lines, addresses, the employer's particulars, the files (deleted from storage). The
skeleton stays, because the figures and the audit trail are kept as the law allows (art. 73:
anonymised information is no longer personal information): kind, service, status and every
timestamp, priority, the assignee, amounts agreed and paid, ratings' scores, each document's kind,
type and size, each message's number, sender and time, each timeline line's who, what and when
(its free-text detail dropped), and the consents (the proof the processing was lawful).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from consult import files
from consult.models import Case, CaseEvent, Document, Message, Rating, Status, User, Verb
from consult.services.timeline import record_event
from legal.models import EmployerContact, LegalIntake, MediationOutcome, MediationSession, WorkLog
from medical.models import ConsultationNote, HomeVisit, MedicalIntake
from notices.models import Notice
from privacy.models import ErasureRequest

ENDED = (Status.CLOSED, Status.WITHDRAWN)
# A document's storage key once its file is deleted (keys are unique: the row's number follows).
GONE = "anonymised/"

# Timeline details that say what kind of thing happened, never what a person wrote or is called.
SAFE_DETAIL = frozenset(
    {"verb", "role", "kind", "channel", "mode", "date", "amount", "scheduled_for", "version", "result", "status",
     "urgency", "reason_code", "purpose", "by_retention"}
)

# Text fields emptied, per model (blank allowed or not: the row is updated, not validated again).
BLANKED: list[tuple[Any, tuple[str, ...]]] = [
    (MedicalIntake, ("relationship", "patient_name", "complaint", "since_when", "conditions", "medicines",
                     "allergies")),
    (ConsultationNote, ("findings", "impression", "advice", "recommended_tests", "referral_hospital",
                        "referral_department")),
    (HomeVisit, ("address", "preferred_dates")),
    (LegalIntake, ("job_title", "employer_name", "employer_address", "employer_contact", "employer_phone",
                   "what_happened", "desired_outcome")),
    (EmployerContact, ("result",)),
    (MediationSession, ("attendees", "notes")),
    (MediationOutcome, ("terms",)),
    (WorkLog, ("note",)),
    (Rating, ("comment",)),
]


@dataclass
class Anonymised:
    """What anonymising a case removed (or, in a dry run, would remove)."""

    reference: str
    messages: int = 0
    files: int = 0
    already: bool = False
    problems: list[str] = field(default_factory=list)


def retention_cutoff() -> Any:
    return timezone.now() - timedelta(days=settings.PRIVACY_RETENTION_DAYS)


def cases_past_retention() -> QuerySet[Case]:
    """Closed and withdrawn cases ended more than PRIVACY_RETENTION_DAYS ago, not yet anonymised
    (none when the setting is 0)."""
    if settings.PRIVACY_RETENTION_DAYS <= 0:
        return Case.objects.none()
    return (
        Case.objects.filter(status__in=ENDED, anonymised_at__isnull=True)
        .annotate(ended_at=Coalesce("closed_at", "withdrawn_at"))
        .filter(ended_at__lt=retention_cutoff())
        .order_by("ended_at", "pk")
    )


def _safe(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in (detail or {}).items()
        if k in SAFE_DETAIL or isinstance(v, (bool, int, float)) or v is None
    }


def case_anonymise_preview(*, case: Case) -> Anonymised:
    """What case_anonymise would remove, changing nothing (the dry run)."""
    if case.anonymised_at is not None:
        return Anonymised(reference=case.reference, already=True)
    return Anonymised(
        reference=case.reference,
        messages=Message.objects.filter(case=case).exclude(body="").count(),
        files=Document.objects.filter(case=case).count(),
    )


def case_anonymise(*, case: Case, actor: User | None, **detail: Any) -> Anonymised:
    """Remove a case's personal details, keep its skeleton (see the module), and say so on its
    timeline (`detail`: why, e.g. by_retention=True or the erasure request's number). Idempotent:
    an anonymised case is left as it is. The files are deleted from storage after the rows commit
    (a store that is down leaves a file behind, reported in `problems` and removed by the next
    run: the row keeps its key)."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.anonymised_at is not None:
            return Anonymised(reference=case.reference, already=True)
        result = case_anonymise_preview(case=case)
        keys = list(Document.objects.filter(case=case).exclude(storage_key__startswith=GONE).values_list(
            "pk", "storage_key"
        ))
        for model, names in BLANKED:
            model.objects.filter(case=case).update(**{name: "" for name in names})
        ConsultationNote.objects.filter(case=case).update(follow_up_date=None)
        Message.objects.filter(case=case).exclude(body="").update(body="")
        for message in Message.objects.filter(case=case).exclude(detail={}).only("pk", "detail"):
            Message.objects.filter(pk=message.pk).update(detail=_safe(message.detail))
        for event in CaseEvent.objects.filter(case=case).exclude(detail={}).only("pk", "detail"):
            CaseEvent.objects.filter(pk=event.pk).update(detail=_safe(event.detail))
        # The document rows stay (who added what kind, when, how big); their names and the
        # summaries' verification codes go with the files.
        Document.objects.filter(case=case).update(original_name="", verification_code=None)
        # Notices keep their kind and parameters (a reference, a service, a date, a link); the
        # number or e-mail address they went to goes.
        Notice.objects.filter(case=case).update(address="", failures=[], error="")
        # Erasure requests keep who asked and who answered, when, and the answer; not her words.
        ErasureRequest.objects.filter(case=case).update(reason="")
        Case.objects.filter(pk=case.pk).update(description="", source_place="", anonymised_at=timezone.now())
        record_event(case, Verb.ANONYMISED, actor, **detail)
    result.problems = _delete_files(keys)
    return result


def _delete_files(keys: list[tuple[int, str]]) -> list[str]:
    """Delete the files, then mark each row's key as gone (so no later run looks for it again)."""
    problems = []
    for pk, key in keys:
        try:
            files.delete(key)
        except files.StorageUnavailable as error:
            problems.append(f"{key}: {error}")
            continue
        Document.objects.filter(pk=pk).update(storage_key=f"{GONE}{pk}")
    return problems


def files_left_behind() -> list[tuple[int, str]]:
    """Files of anonymised cases a store that was down kept."""
    return list(
        Document.objects.filter(case__anonymised_at__isnull=False)
        .exclude(storage_key__startswith=GONE)
        .values_list("pk", "storage_key")
    )


def anonymise_expired(*, dry_run: bool = False, limit: int | None = None) -> list[Anonymised]:
    """Anonymise every case past the retention period (see cases_past_retention); in a dry run,
    report what would be removed. Returns one line per case."""
    cases = cases_past_retention()
    if limit is not None:
        cases = cases[:limit]
    done: list[Anonymised] = []
    for case in cases:
        if dry_run:
            done.append(case_anonymise_preview(case=case))
        else:
            done.append(case_anonymise(case=case, actor=None, by_retention=True))
    if not dry_run:
        # Files a store that was down kept at an earlier run.
        _delete_files(files_left_behind())
    return done

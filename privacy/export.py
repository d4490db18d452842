"""A resident's copy of their data (PIPL art. 45): one zip with `data.json` (the account, and each
of their cases with its intake, records, consents, timeline, chat and document list) and the
files themselves under `files/`. Only cases the person opened: nothing of anyone else's case,
whatever their role."""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.forms.models import model_to_dict
from django.utils import timezone, translation

from consult import files
from consult.models import Case, CaseEvent, Document, Message, Rating, User
from legal.models import ClaimEstimate, EmployerContact, LegalIntake, MediationOutcome, MediationSession
from medical.models import ConsultationNote, HomeVisit, MedicalIntake
from privacy.models import Consent

# Kept in memory up to this size, then spilled to a temporary file: a resident's files may be many.
SPOOL_BYTES = 8 * 1024 * 1024


def _person(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"name": user.name, "role": user.role}


def _row(instance: Any, exclude: tuple[str, ...] = ("id", "case")) -> dict[str, Any] | None:
    return None if instance is None else model_to_dict(instance, exclude=list(exclude))


def _rows(queryset: Any, exclude: tuple[str, ...] = ("id", "case")) -> list[dict[str, Any]]:
    return [model_to_dict(row, exclude=list(exclude)) for row in queryset]


def _file_name(document: Document) -> str:
    safe = re.sub(r"[\\/\x00-\x1f]", "_", document.original_name or "file")[:120]
    return f"files/{document.case.reference}/{document.pk}-{safe}"


def _case(case: Case) -> dict[str, Any]:
    documents = list(Document.objects.filter(case=case).select_related("uploader", "case"))
    return {
        "reference": case.reference,
        "kind": case.kind,
        "service": {"code": case.skill.code, "zh": case.skill.name_zh, "en": case.skill.name_en},
        "status": case.status,
        "priority": case.priority,
        "description": case.description,
        "opened_from": case.source_place,
        "handled_by": _person(case.assignee.user) if case.assignee else None,
        "times": {
            name: getattr(case, name)
            for name in ("created_at", "submitted_at", "assigned_at", "accepted_at", "resolved_at", "closed_at",
                         "withdrawn_at", "anonymised_at")
        },
        "medical": {
            "intake": _row(MedicalIntake.objects.filter(case=case).first()),
            "note": _row(ConsultationNote.objects.filter(case=case).first(), ("id", "case", "author")),
            "home_visits": _rows(HomeVisit.objects.filter(case=case), ("id", "case", "requested_by")),
        } if case.kind == "medical" else None,
        "legal": {
            "intake": _row(LegalIntake.objects.filter(case=case).first()),
            "estimate": _row(ClaimEstimate.objects.filter(case=case).first(), ("id", "case", "rates")),
            "employer_contacts": _rows(EmployerContact.objects.filter(case=case), ("id", "case", "recorded_by")),
            "mediation_sessions": _rows(MediationSession.objects.filter(case=case), ("id", "case", "recorded_by")),
            "outcome": _row(MediationOutcome.objects.filter(case=case).first()),
        } if case.kind == "legal" else None,
        "rating": _row(Rating.objects.filter(case=case).first()),
        "consents": [
            {
                "purpose": c.purpose,
                "version": c.text.version,
                "given_at": c.given_at,
                "given_by": _person(c.given_by),
                "language": c.language,
                "where": c.channel,
                "text": c.shown_text(),
            }
            for c in Consent.objects.filter(case=case).select_related("text", "given_by")
        ],
        "timeline": [
            {"when": e.created_at, "who": _person(e.actor), "what": e.verb, "label": str(e.get_verb_display()),
             "detail": e.detail}
            for e in CaseEvent.objects.filter(case=case).select_related("actor")
        ],
        "messages": [
            {"number": m.seq, "when": m.created_at, "from": _person(m.sender), "kind": m.kind, "text": m.body,
             "document": m.document_id}
            for m in Message.objects.filter(case=case).select_related("sender").order_by("seq")
        ],
        "documents": [
            {"id": d.pk, "kind": d.kind, "name": d.original_name, "content_type": d.content_type, "size": d.size,
             "sha256": d.sha256, "added": d.created_at, "added_by": _person(d.uploader),
             "file": _file_name(d) if case.anonymised_at is None else None}
            for d in documents
        ],
    }


def export_build(*, user: User) -> IO[bytes]:
    """The zip of `user`'s data, rewound, ready to stream. Files the store has lost are listed
    in the JSON (`missing_files`) rather than failing the whole copy. Raises StorageUnavailable
    when the file store cannot be reached."""
    cases = list(Case.objects.filter(resident=user).select_related("skill", "assignee__user").order_by("created_at"))
    with translation.override(user.language):
        data: dict[str, Any] = {
            "exported_at": timezone.now(),
            "account": {
                "phone": user.phone, "name": user.name, "email": user.email, "language": user.language,
                "role": user.role, "joined": user.date_joined,
            },
            "cases": [_case(case) for case in cases],
            "missing_files": [],
        }
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for case in cases:
            if case.anonymised_at is not None:
                continue
            for document in Document.objects.filter(case=case).select_related("case"):
                try:
                    with files.open_stored(document.storage_key) as handle, archive.open(
                        _file_name(document), "w"
                    ) as target:
                        while chunk := handle.read(1024 * 1024):
                            target.write(chunk)
                except FileNotFoundError:
                    data["missing_files"].append(document.pk)
        archive.writestr("data.json", json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))
    out.seek(0)
    return out


def export_filename(user: User) -> str:
    return f"my-data-{timezone.localdate():%Y%m%d}.zip"

"""API for medical consultations: open one (same form and service as the page), write the note."""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict
from django.utils.translation import gettext as _

from consult.api import serializers as s
from consult.api.domain_views import assignee_record_view, case_create_view
from consult.models import Case, Kind, User
from medical import services
from medical.forms import ConsultationNoteForm, MedicalIntakeForm
from medical.models import ConsultationNote, HomeVisit, MedicalIntake


def api_data(case: Case, user: User) -> dict[str, Any]:
    intake = MedicalIntake.objects.filter(case=case).first()
    note = ConsultationNote.objects.filter(case=case).first()
    return {
        "intake": model_to_dict(intake, exclude=["id", "case"]) if intake else None,
        "note": model_to_dict(note, exclude=["id", "case", "author"]) if note else None,
        "home_visits": [
            {"status": v.status, "scheduled_for": v.scheduled_for, "preferred_dates": v.preferred_dates}
            for v in HomeVisit.objects.filter(case=case)
        ],
    }


MedicalCaseCreateView = case_create_view(
    kind=Kind.MEDICAL,
    form_class=MedicalIntakeForm,
    open_case=services.medical_case_from_form,
    request_serializer=s.MedicalCaseCreateSerializer,
    description="Open a medical consultation; upload its documents afterwards to /cases/{reference}/documents/.",
)

NoteView = assignee_record_view(
    kind=Kind.MEDICAL,
    form_class=ConsultationNoteForm,
    save=lambda case, doctor, data: services.note_save(
        case=case, professional=doctor, **{k: data[k] for k in services.NOTE_FIELDS}
    ),
    request_serializer=s.NoteSerializer,
    not_assignee=lambda: _("Only the doctor the case is assigned to can write the note."),
    description="Write or rewrite the consultation note (the assigned doctor).",
    form_kwargs=lambda case: {"instance": ConsultationNote.objects.filter(case=case).first()},
)

"""API for medical consultations: open one (same form and service as the page), write the note."""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consult import selectors
from consult.api import serializers as s
from consult.api.idempotency import idempotent
from consult.api.views import CASE_REF, _detail, _user
from consult.errors import CaseError
from consult.models import Case, Kind, Skill, User
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


class MedicalCaseCreateView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request=s.MedicalCaseCreateSerializer,
        responses={201: s.CaseDetailSerializer},
        tags=["cases"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        """Open a medical consultation; upload its documents afterwards to /cases/{reference}/documents/."""
        user = _user(request)
        if not user.is_resident:
            raise CaseError(_("Only residents open cases."), code="not_resident")
        code = str(s.fields_of(request.data).get("skill", ""))
        skill = Skill.objects.filter(code=code, kind=Kind.MEDICAL, is_active=True).first()
        cleaned = s.validate_with(MedicalIntakeForm, request.data, replace={"skill": skill.pk if skill else ""})
        case, _problems = services.medical_case_from_form(resident=user, data=cleaned)
        return _detail(request, case, 201)


class NoteView(APIView):
    @extend_schema(
        parameters=[CASE_REF], request=s.NoteSerializer, responses={200: s.CaseDetailSerializer}, tags=["cases"]
    )
    def put(self, request: Request, reference: str) -> Response:
        """Write or rewrite the consultation note (the assigned doctor)."""
        case = selectors.case_get_for_user(user=request.user, reference=reference)
        if case.kind != Kind.MEDICAL:
            # As on the pages: a labour dispute has no consultation note, so none is written on one.
            raise Http404
        if case.assignee is None or case.assignee.user_id != _user(request).pk:
            raise CaseError(_("Only the doctor the case is assigned to can write the note."), code="not_assignee")
        note = ConsultationNote.objects.filter(case=case).first()
        cleaned = s.validate_with(ConsultationNoteForm, request.data, instance=note)
        services.note_save(case=case, professional=case.assignee, **{k: cleaned[k] for k in services.NOTE_FIELDS})
        return _detail(request, case)

"""API for labour disputes: open one (same form and service as the page), record the outcome."""

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
from legal import services
from legal.estimate import step_text
from legal.forms import LegalIntakeForm, OutcomeForm
from legal.models import ClaimEstimate, LegalIntake, MediationOutcome


def api_data(case: Case, user: User) -> dict[str, Any]:
    intake = LegalIntake.objects.filter(case=case).first()
    estimate = ClaimEstimate.objects.filter(case=case).first()
    outcome = MediationOutcome.objects.filter(case=case).first()
    return {
        "intake": model_to_dict(intake, exclude=["id", "case"]) if intake else None,
        "estimate": {
            "rule": estimate.rule,
            "entitled": str(estimate.entitled),
            "owed": str(estimate.owed),
            "steps": [step_text(step) for step in estimate.steps],
        }
        if estimate
        else None,
        "outcome": model_to_dict(outcome, exclude=["id", "case"]) if outcome else None,
    }


class LegalCaseCreateView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request=s.LegalCaseCreateSerializer,
        responses={201: s.CaseDetailSerializer},
        tags=["cases"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        """Ask for mediation in a labour dispute; upload the evidence afterwards."""
        user = _user(request)
        if not user.is_resident:
            raise CaseError(_("Only residents open cases."), code="not_resident")
        code = str(s.fields_of(request.data).get("skill", ""))
        skill = Skill.objects.filter(code=code, kind=Kind.LEGAL, is_active=True).first()
        cleaned = s.validate_with(LegalIntakeForm, request.data, replace={"skill": skill.pk if skill else ""})
        case, _problems = services.legal_case_from_form(resident=user, data=cleaned)
        return _detail(request, case, 201)


class OutcomeView(APIView):
    @extend_schema(
        parameters=[CASE_REF], request=s.OutcomeSerializer, responses={200: s.CaseDetailSerializer}, tags=["cases"]
    )
    def put(self, request: Request, reference: str) -> Response:
        """Record how the mediation ended (the assigned lawyer)."""
        case = selectors.case_get_for_user(user=request.user, reference=reference)
        if case.kind != Kind.LEGAL:
            # As on the pages: a medical consultation has no mediation, so no outcome is recorded on one.
            raise Http404
        if case.assignee is None or case.assignee.user_id != _user(request).pk:
            raise CaseError(_("Only the lawyer the case is assigned to can record this."), code="not_assignee")
        cleaned = s.validate_with(OutcomeForm, request.data)
        services.outcome_record(case=case, professional=case.assignee, **cleaned)
        return _detail(request, case)

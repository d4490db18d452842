"""API for labour disputes: open one (same form and service as the page), record the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import BigIntegerField
from django.forms.models import model_to_dict
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from consult import selectors
from consult.api import serializers as s
from consult.api.domain_views import assignee_record_view, case_create_view
from consult.models import Case, Kind, User
from legal import services
from legal.estimate import step_text
from legal.forms import LegalIntakeForm, OutcomeForm
from legal.models import CityRates, ClaimEstimate, LegalIntake, MediationOutcome
from medical import services as medical_services


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


def city_not_covered(city: Any) -> dict[str, list[str]]:
    """The intake offers the cities with wage rates; any other is not offered (a 404, as a service
    that is not). A NUL is dropped for the look-up: PostgreSQL refuses it in a query, and the form
    refuses such a city anyway."""
    if CityRates.objects.filter(city=str(city or "").replace("\x00", "")).exists():
        return {}
    return {"city": [_("The service does not cover this city yet: choose one of the cities it lists.")]}


def _row_id(value: object) -> bool:
    # Out of a row id's range is refused here: SQLite cannot even compare integers over 64 bits.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= BigIntegerField.MAX_BIGINT


def referral(fields: Mapping[str, Any], user: User) -> dict[str, Any]:
    """A dispute opened from the resident's consultation (`referred_from`), with copies of the
    documents of it they chose (`carry_documents`, ids from that case): as on the pages."""
    reference = fields.get("referred_from")
    if not reference:
        return {}
    case = selectors.case_get_for_user(user=user, reference=str(reference).replace("\x00", ""))
    if case.kind != Kind.MEDICAL or case.resident_id != user.pk:
        raise Http404
    ids = fields.get("carry_documents") or []
    if not isinstance(ids, list) or not all(_row_id(i) for i in ids):
        raise ValidationError({"carry_documents": [_("A list of document ids of the consultation.")]})
    if case.documents.filter(pk__in=ids).count() != len(set(ids)):
        raise ValidationError({"carry_documents": [_("These are not all documents of the consultation.")]})
    staged = medical_services.referral_carry(case=case, resident=user, document_ids=ids)
    return {"referred_from": case, "staged": staged}


LegalCaseCreateView = case_create_view(
    kind=Kind.LEGAL,
    form_class=LegalIntakeForm,
    open_case=services.legal_case_from_form,
    request_serializer=s.LegalCaseCreateSerializer,
    description="Ask for mediation in a labour dispute; upload the evidence afterwards.",
    not_offered=lambda fields: city_not_covered(fields.get("city")),
    more=referral,
)

OutcomeView = assignee_record_view(
    kind=Kind.LEGAL,
    form_class=OutcomeForm,
    save=lambda case, lawyer, data: services.outcome_record(case=case, professional=lawyer, **data),
    request_serializer=s.OutcomeSerializer,
    not_assignee=lambda: _("Only the lawyer the case is assigned to can record this."),
    description="Record how the mediation ended (the assigned lawyer).",
)

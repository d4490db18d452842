"""Shapes of the API's requests and responses.

Input serializers describe the fields for the schema and parse JSON; the business rules (consent,
amounts, dates...) are checked by the same Django forms the pages use (`validate_with`), so no
rule is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.http import QueryDict
from django.urls import reverse
from rest_framework import serializers
from rest_framework.settings import api_settings

from consult.models import Case, CaseEvent, Document, Skill


def fields_of(data: Any) -> Mapping[str, Any]:
    """The request body's fields; a body that is not an object (a JSON list, a number) is a 400."""
    if not isinstance(data, Mapping):
        message = serializers.Serializer.default_error_messages["invalid"].format(datatype=type(data).__name__)
        raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]})
    return data


def validate_with(
    form_class: type[forms.BaseForm], data: Any, *, replace: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run a page's form over API data (with `replace` put in place of what the client sent); its
    errors become the API's field errors."""
    form = form_class(data=_as_posted(form_class, fields_of(data), replace or {}), **kwargs)
    if not form.is_valid():
        raise serializers.ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})
    return form.cleaned_data


def _as_posted(form_class: type[forms.BaseForm], data: Mapping[str, Any], replace: dict[str, Any]) -> Any:
    """The fields as a browser posts them: text, or a list of texts for a multiple choice. Django's
    form fields expect nothing else (a date field given a number or a list fails instead of
    refusing it)."""
    if isinstance(data, QueryDict):
        posted = QueryDict(mutable=True)
        for name, values in data.lists():
            posted.setlist(name, values)
        for name, value in replace.items():
            posted[name] = value
        return posted
    as_text: dict[str, Any] = {}
    wrong: dict[str, list[str]] = {}
    not_text = str(serializers.CharField.default_error_messages["invalid"])
    declared: Mapping[str, forms.Field] = getattr(form_class, "base_fields", {})
    for name, value in {**data, **replace}.items():
        field = declared.get(name)
        multiple = field is not None and getattr(field.widget, "allow_multiple_selected", False)
        if value is None:
            as_text[name] = None
        elif isinstance(value, bool):
            as_text[name] = "true" if value else "false"
        elif isinstance(value, list) and multiple:
            as_text[name] = [str(item) for item in value]
        elif isinstance(value, (list, dict)):
            wrong[name] = [not_text]
        else:
            as_text[name] = str(value)
    if wrong:
        raise serializers.ValidationError(wrong)
    return as_text


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class LoginSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=20)
    password = serializers.CharField(max_length=200, style={"input_type": "password"})
    otp_code = serializers.CharField(
        max_length=32, required=False, allow_blank=True,
        help_text="Doctors, lawyers, coordinators and admins: the 6 digits of their authenticator app, or "
        "one recovery code. Residents leave it out.",
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)
    user = serializers.DictField()


class SkillSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    office = serializers.CharField(read_only=True)
    materials = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Skill
        fields = [
            "code",
            "kind",
            "name",
            "name_zh",
            "name_en",
            "materials",
            "office",
            "office_phone",
            "response_hours",
            "required_documents",
        ]


class CaseSerializer(serializers.ModelSerializer):
    skill = serializers.CharField(source="skill.code", read_only=True)
    skill_name = serializers.CharField(source="skill.name", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    assignee_name = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "reference",
            "kind",
            "skill",
            "skill_name",
            "status",
            "status_label",
            "priority",
            "description",
            "created_at",
            "submitted_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "assignee_name",
        ]

    def get_assignee_name(self, case: Case) -> str | None:
        return case.assignee.user.name if case.assignee else None


class EventSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="get_verb_display", read_only=True)
    actor = serializers.SerializerMethodField()

    class Meta:
        model = CaseEvent
        fields = ["verb", "label", "actor", "detail", "created_at"]

    def get_actor(self, event: CaseEvent) -> str | None:
        return event.actor.name if event.actor else None


class DocumentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name", read_only=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = ["id", "kind", "kind_label", "name", "content_type", "size", "sha256", "created_at", "url"]

    def get_url(self, document: Document) -> str:
        return reverse("api:document-download", args=[document.case.reference, document.pk])


class CaseDetailSerializer(CaseSerializer):
    timeline = EventSerializer(source="events", many=True, read_only=True)
    documents = DocumentSerializer(many=True, read_only=True)
    place_in_line = serializers.SerializerMethodField()
    estimated_wait_seconds = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    domain = serializers.SerializerMethodField()

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "timeline",
            "documents",
            "place_in_line",
            "estimated_wait_seconds",
            "actions",
            "domain",
        ]

    def get_place_in_line(self, case: Case) -> int | None:
        from consult.selectors import queue_place

        return queue_place(case)

    def get_estimated_wait_seconds(self, case: Case) -> int | None:
        from consult.selectors import estimated_wait

        wait = estimated_wait(case)
        return int(wait.total_seconds()) if wait else None

    def get_actions(self, case: Case) -> list[str]:
        from consult.selectors import case_actions

        return sorted(case_actions(case=case, user=self.context["request"].user))

    def get_domain(self, case: Case) -> dict[str, Any]:
        from consult.api.domains import domain_data

        return domain_data(case, self.context["request"].user)


class MedicalCaseCreateSerializer(serializers.Serializer):
    skill = serializers.CharField(help_text="Service code, e.g. respiratory; general when not sure.")
    complaint = serializers.CharField()
    since_when = serializers.CharField()
    patient_age = serializers.IntegerField()
    patient_sex = serializers.ChoiceField(choices=["female", "male"])
    health_consent = serializers.BooleanField()
    consent_version = serializers.IntegerField(
        help_text="The version of the consent text shown to the person (GET consents/health/): a separate consent "
        "to health information is recorded with the very text agreed to."
    )
    urgent_signs = serializers.ListField(child=serializers.CharField(), required=False)
    on_behalf = serializers.BooleanField(required=False)
    relationship = serializers.CharField(required=False, allow_blank=True)
    patient_name = serializers.CharField(required=False, allow_blank=True)
    conditions = serializers.CharField(required=False, allow_blank=True)
    medicines = serializers.CharField(required=False, allow_blank=True)
    allergies = serializers.CharField(required=False, allow_blank=True)


class LegalCaseCreateSerializer(serializers.Serializer):
    skill = serializers.CharField(help_text="Service code, e.g. sick-pay.")
    job_title = serializers.CharField()
    employment_start = serializers.DateField()
    employment_end = serializers.DateField(required=False, allow_null=True)
    employer_name = serializers.CharField()
    employer_address = serializers.CharField(required=False, allow_blank=True)
    employer_contact = serializers.CharField(required=False, allow_blank=True)
    employer_phone = serializers.CharField(required=False, allow_blank=True)
    what_happened = serializers.CharField()
    city = serializers.CharField()
    monthly_wage = serializers.CharField(help_text="Yuan, e.g. 4000 or 4000.50")
    amount_received = serializers.CharField(required=False, help_text="Yuan")
    amount_claimed = serializers.CharField(required=False, help_text="Yuan")
    sick_days = serializers.IntegerField(required=False, allow_null=True)
    overtime_weekday_hours = serializers.CharField(required=False, allow_blank=True)
    overtime_restday_hours = serializers.CharField(required=False, allow_blank=True)
    overtime_holiday_hours = serializers.CharField(required=False, allow_blank=True)
    dismissal_unlawful = serializers.BooleanField(required=False)
    desired_outcome = serializers.CharField()
    share_consent = serializers.BooleanField()
    consent_version = serializers.IntegerField(
        help_text="The version of the consent text shown to the person (GET consents/share_employer/)."
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.CharField(required=False, help_text="exam_report, imaging, payslip, ... (default other)")


class MessageSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    sender_id = serializers.IntegerField(allow_null=True)
    sender = serializers.CharField()
    body = serializers.CharField(allow_blank=True)
    client_id = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField()
    detail = serializers.DictField()
    document = serializers.DictField(allow_null=True)


class MessageCreateSerializer(serializers.Serializer):
    client_id = serializers.CharField(max_length=64)
    body = serializers.CharField(allow_blank=True, required=False, max_length=4000)
    document_id = serializers.IntegerField(required=False, allow_null=True)


class MessageCreatedSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    created = serializers.BooleanField()
    message = MessageSerializer()


class QueueEntrySerializer(serializers.Serializer):
    skill = serializers.CharField(source="skill.code")
    skill_name = serializers.CharField(source="skill.name")
    priority = serializers.IntegerField()
    priority_label = serializers.CharField()
    waited_seconds = serializers.SerializerMethodField()
    description = serializers.CharField()

    def get_waited_seconds(self, entry: Any) -> int:
        return int(entry.waited.total_seconds())


class QueueSerializer(serializers.Serializer):
    on_duty = serializers.BooleanField()
    load = serializers.IntegerField()
    capacity = serializers.IntegerField()
    open_cases = CaseSerializer(many=True)
    waiting = QueueEntrySerializer(many=True)


class OnDutySerializer(serializers.Serializer):
    on_duty = serializers.BooleanField()


class RatingSerializer(serializers.Serializer):
    score = serializers.IntegerField(required=False, allow_null=True, help_text="1 to 5; omit with skip=true")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    skip = serializers.BooleanField(required=False)


class TrackSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=20)
    phone_last4 = serializers.CharField(max_length=4)


class TrackedSerializer(serializers.Serializer):
    reference = serializers.CharField()
    skill = serializers.CharField(source="skill.code")
    skill_name = serializers.CharField(source="skill.name")
    status = serializers.CharField()
    status_label = serializers.CharField()
    place_in_line = serializers.IntegerField(allow_null=True)
    estimated_wait_seconds = serializers.SerializerMethodField()
    next_step = serializers.CharField()

    def get_estimated_wait_seconds(self, tracked: Any) -> int | None:
        return int(tracked.estimated_wait.total_seconds()) if tracked.estimated_wait else None


class FiguresSerializer(serializers.Serializer):
    consultations = serializers.IntegerField()
    disputes = serializers.IntegerField()
    disputes_settled = serializers.IntegerField()
    compensation_secured = serializers.CharField()
    people_served = serializers.IntegerField()
    first_contact_rate = serializers.CharField(allow_null=True)
    satisfaction_rate = serializers.CharField(allow_null=True)
    median_first_response_seconds = serializers.IntegerField(allow_null=True)
    median_resolution_seconds = serializers.IntegerField(allow_null=True)
    months = serializers.ListField(child=serializers.DictField())
    services = serializers.ListField(child=serializers.DictField())


class NoteSerializer(serializers.Serializer):
    findings = serializers.CharField()
    impression = serializers.CharField()
    advice = serializers.CharField()
    recommended_tests = serializers.CharField(required=False, allow_blank=True)
    urgency = serializers.ChoiceField(choices=["routine", "soon", "now"])
    follow_up_date = serializers.DateField(required=False, allow_null=True)
    referral_hospital = serializers.CharField(required=False, allow_blank=True)
    referral_department = serializers.CharField(required=False, allow_blank=True)


class OutcomeSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=["settled", "partly", "not_settled", "withdrawn"])
    amount_agreed = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text="Yuan")
    payment_due = serializers.DateField(required=False, allow_null=True)
    terms = serializers.CharField(required=False, allow_blank=True)
    arbitration_deadline = serializers.DateField(required=False, allow_null=True)

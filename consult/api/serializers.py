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
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from consult.models import Case, CaseEvent, Document, DocumentKind, Skill
from legal.models import Result
from medical.models import Sex, Urgency, UrgentSign

NOT_A_BOOLEAN = serializers.BooleanField.default_error_messages["invalid"]


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
    refusing it). A yes/no is true or false, as the schema says, not any text (a form's checkbox
    reads any text as ticked)."""
    declared: Mapping[str, forms.Field] = getattr(form_class, "base_fields", {})
    wrong: dict[str, list[str]] = {}
    if isinstance(data, QueryDict):
        posted = QueryDict(mutable=True)
        for name, values in data.lists():
            field = declared.get(name)
            if field is not None and not isinstance(field, forms.CharField):
                # JSON's null written into a form body: no date, number or choice is spelt so.
                values = ["" if value == "null" else value for value in values]
            # "on": what a browser's ticked checkbox sends.
            if isinstance(field, forms.BooleanField) and any(v not in ("true", "false", "on") for v in values):
                wrong[name] = [str(NOT_A_BOOLEAN)]
            posted.setlist(name, values)
        for name, value in replace.items():
            posted[name] = value
        if wrong:
            raise serializers.ValidationError(wrong)
        return posted
    as_text: dict[str, Any] = {}
    not_text = str(serializers.CharField.default_error_messages["invalid"])
    for name, value in {**data, **replace}.items():
        field = declared.get(name)
        if field is None:
            # The form reads only its own fields: another one, whatever its shape, changes nothing
            # (the schema allows them), so it is no reason to refuse the request.
            continue
        multiple = getattr(field.widget, "allow_multiple_selected", False)
        if isinstance(field, forms.BooleanField) and not isinstance(value, bool) and name not in replace:
            wrong[name] = [str(NOT_A_BOOLEAN)]
        elif value is None:
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


# What the intake forms read, as the schema states it (their forms check it again): a required text
# has something besides spaces (the forms strip them), a consent must be given, an amount in yuan is
# figures with at most 2 decimals below 100,000,000 (legal.forms.YuanField), and a service is a
# code from GET /services/ (one that names no service offered answers 404: the list lives in the
# database, not in the schema).
SOME_TEXT = r"\S"
YUAN = r"^\s*[0-9]{1,8}(\.[0-9]{1,2})?\s*$"
YUAN_OR_NOTHING = r"^\s*([0-9]{1,8}(\.[0-9]{1,2})?)?\s*$"
HOURS = r"^\s*(5000(\.0)?|[0-4]?[0-9]{1,3}(\.[0-9])?)?\s*$"


def text(max_length: int, **kwargs: Any) -> serializers.CharField:
    """A required free text of at most `max_length` characters."""
    return serializers.RegexField(SOME_TEXT, max_length=max_length, **kwargs)


def optional_text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


@extend_schema_field({"type": "boolean", "enum": [True]})
class ConsentField(serializers.BooleanField):
    """A consent the form requires: only true is accepted."""


class MedicalCaseCreateSerializer(serializers.Serializer):
    skill = serializers.CharField(
        help_text="Service code from GET /services/ (medical), e.g. respiratory; general when not sure."
    )
    complaint = text(2000)
    since_when = text(100)
    patient_age = serializers.IntegerField(min_value=0, max_value=130)
    patient_sex = serializers.ChoiceField(choices=Sex.choices)
    health_consent = ConsentField(
        help_text="The resident agrees that the doctors read and keep the health information sent."
    )
    consent_version = serializers.IntegerField(
        min_value=1,
        help_text="The version of the consent text shown to the person (GET consents/health/): a separate consent "
        "to health information is recorded with the very text agreed to."
    )
    urgent_signs = serializers.ListField(child=serializers.ChoiceField(choices=UrgentSign.choices), required=False)
    on_behalf = serializers.BooleanField(required=False)
    relationship = optional_text(50)
    patient_name = optional_text(100, help_text="Required (not only spaces) when on_behalf is true.")
    conditions = optional_text(2000)
    medicines = optional_text(2000)
    allergies = optional_text(1000)

    # Asking for a relative needs the patient's name (medical.forms.MedicalIntakeForm.clean).
    schema_rules = {
        "anyOf": [
            {"properties": {"on_behalf": {"enum": [False]}}},
            {"required": ["patient_name"], "properties": {"patient_name": {"pattern": SOME_TEXT}}},
        ]
    }


def yuan(**kwargs: Any) -> serializers.CharField:
    return serializers.RegexField(YUAN, help_text="Yuan, e.g. 4000 or 4000.50", **kwargs)


def hours(**kwargs: Any) -> serializers.CharField:
    return serializers.RegexField(HOURS, required=False, allow_blank=True, help_text="0 to 5000, one decimal", **kwargs)


class LegalCaseCreateSerializer(serializers.Serializer):
    skill = serializers.CharField(help_text="Service code from GET /services/ (legal), e.g. sick-pay.")
    job_title = text(100)
    employment_start = serializers.DateField(help_text="Not in the future.")
    employment_end = serializers.DateField(
        required=False, allow_null=True, help_text="Empty while still employed; not before employment_start."
    )
    employer_name = text(200)
    employer_address = optional_text(300)
    employer_contact = optional_text(100)
    employer_phone = optional_text(30)
    what_happened = text(4000)
    city = text(100, help_text="A city the service has wage rates for (see the intake page).")
    monthly_wage = yuan()
    amount_received = yuan()
    amount_claimed = yuan()
    sick_days = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=366)
    overtime_weekday_hours = hours()
    overtime_restday_hours = hours()
    overtime_holiday_hours = hours()
    dismissal_unlawful = serializers.BooleanField(required=False)
    desired_outcome = text(2000)
    share_consent = ConsentField(help_text="The worker agrees that the lawyer shares the details with the employer.")
    consent_version = serializers.IntegerField(
        min_value=1,
        help_text="The version of the consent text shown to the person (GET consents/share_employer/)."
    )
    referred_from = serializers.CharField(
        required=False, max_length=20,
        help_text="The reference of the worker's own consultation this dispute comes from (an injury at work): "
        "the two cases link to each other.",
    )
    carry_documents = serializers.ListField(
        child=serializers.IntegerField(), required=False,
        help_text="Ids of documents of that consultation the worker chose to give the lawyers: copies are attached.",
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(
        choices=[k for k in DocumentKind.choices if k[0] != DocumentKind.SUMMARY],
        required=False, help_text="Default other. (Summaries are made by the service, not uploaded.)",
    )


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
    document_id = serializers.IntegerField(required=False, allow_null=True, help_text="A document of this case")

    # Something to send: a text besides spaces, or a document (consult.services.messages).
    schema_rules = {
        "anyOf": [
            {"required": ["body"], "properties": {"body": {"pattern": SOME_TEXT}}},
            {"required": ["document_id"], "properties": {"document_id": {"type": "integer"}}},
        ]
    }


class VoiceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The recording: WebM or Ogg with Opus, or MP4 (M4A) with AAC")
    client_id = serializers.CharField(max_length=64, help_text="Chosen by the client: a retry is stored once")


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


class StrictBooleanField(serializers.BooleanField):
    """true or false, as the schema says (DRF would also read yes, on, 1, t...)."""

    def to_internal_value(self, data: Any) -> bool:
        # Not by set membership: 0 and 1 equal False and True there.
        if isinstance(data, bool):
            return data
        if data not in ("true", "false"):
            self.fail("invalid", input=data)
        return bool(data == "true")


class RequiredBooleanField(StrictBooleanField):
    # Required in a form body too: DRF reads a boolean missing from one as an unticked checkbox.
    default_empty_html = empty


class OnDutySerializer(serializers.Serializer):
    on_duty = RequiredBooleanField()


class OnDutyAnswerSerializer(serializers.Serializer):
    on_duty = serializers.BooleanField()
    given = serializers.ListField(
        child=serializers.CharField(),
        help_text="References of the waiting cases given to you as you came on duty, in line order: accept them.",
    )


class RatingSerializer(serializers.Serializer):
    score = serializers.IntegerField(required=False, min_value=1, max_value=5, help_text="1 to 5; omit with skip=true")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    skip = StrictBooleanField(required=False)

    # A score, or skip=true (then the rest is not read).
    schema_rules = {
        "anyOf": [{"required": ["score"]}, {"required": ["skip"], "properties": {"skip": {"enum": [True]}}}]
    }


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
    findings = text(5000)
    impression = text(3000)
    advice = text(5000)
    recommended_tests = optional_text(2000)
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    follow_up_date = serializers.DateField(required=False, allow_null=True, help_text="Not in the past.")
    referral_hospital = optional_text(200)
    referral_department = optional_text(100)


def one_of(*choices: str) -> dict[str, Any]:
    """A rule's condition on a choice field. In an allOf: drf-spectacular's enum hook would
    otherwise put the field's whole list of choices in its place, and the rule would hold for all."""
    return {"allOf": [{"enum": [str(choice) for choice in choices]}]}


class OutcomeSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=Result.choices)
    amount_agreed = serializers.RegexField(
        YUAN_OR_NOTHING, required=False, allow_blank=True, allow_null=True,
        help_text="Yuan; required with a settlement (settled, partly)",
    )
    payment_due = serializers.DateField(required=False, allow_null=True)
    terms = optional_text(4000)
    arbitration_deadline = serializers.DateField(
        required=False, allow_null=True, help_text="Required when not settled (referred to arbitration)"
    )

    # A settlement needs its amount and due date; a referral to arbitration its deadline to file
    # (legal.services.outcome_record).
    schema_rules = {
        "anyOf": [
            {"properties": {"result": one_of(Result.WITHDRAWN)}},
            {
                "required": ["amount_agreed", "payment_due"],
                "properties": {
                    "result": one_of(Result.SETTLED, Result.PARTLY),
                    "amount_agreed": {"type": "string", "pattern": YUAN},
                    "payment_due": {"type": "string", "format": "date"},
                },
            },
            {
                "required": ["arbitration_deadline"],
                "properties": {
                    "result": one_of(Result.NOT_SETTLED),
                    "arbitration_deadline": {"type": "string", "format": "date"},
                },
            },
        ]
    }

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.models import Kind, Skill
from medical.models import ConsultationNote, Sex, UrgentSign
from privacy.forms import SeparateConsentForm
from privacy.models import Purpose


class SpecialtyField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class MedicalIntakeForm(SeparateConsentForm):
    consent_purpose = Purpose.HEALTH
    consent_field = "health_consent"

    skill = SpecialtyField(
        label=_("Which specialty?"),
        queryset=Skill.objects.filter(kind=Kind.MEDICAL, is_active=True),
        empty_label=None,
        help_text=_("Not sure? Choose general practice: a general doctor will read your case first."),
    )
    complaint = forms.CharField(
        label=_("What is the main problem?"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4})
    )
    since_when = forms.CharField(
        label=_("Since when?"), max_length=100, help_text=_("For example: two weeks, since last spring.")
    )
    urgent_signs = forms.MultipleChoiceField(
        label=_("Does the patient have any of these now?"),
        choices=UrgentSign.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    on_behalf = forms.BooleanField(label=_("I am asking for a relative, not for myself"), required=False)
    relationship = forms.CharField(
        label=_("Your relationship to the patient"), max_length=50, required=False,
        help_text=_("For example: son, daughter, neighbour."),
    )
    patient_name = forms.CharField(label=_("Patient's name"), max_length=100, required=False)
    patient_age = forms.IntegerField(label=_("Patient's age"), min_value=0, max_value=130)
    patient_sex = forms.ChoiceField(label=_("Patient's sex"), choices=Sex.choices, widget=forms.RadioSelect)
    conditions = forms.CharField(
        label=_("Existing illnesses (optional)"), max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    medicines = forms.CharField(
        label=_("Medicines taken now (optional)"), max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    allergies = forms.CharField(label=_("Allergies (optional)"), max_length=1000, required=False)
    materials_later = forms.BooleanField(
        label=_("I do not have all the documents yet: send without them"), required=False
    )
    health_consent = forms.BooleanField(
        label=_(
            "I agree that the doctors of this service read and keep the health information and documents I send, "
            "only to answer this consultation."
        ),
        error_messages={"required": _("Please agree to the use of health information, or we cannot help you online.")},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("on_behalf") and not (data.get("patient_name") or "").strip():
            self.add_error("patient_name", _("Please write the name of the person who is ill."))
        return data


class ConsultationNoteForm(forms.ModelForm[ConsultationNote]):
    class Meta:
        model = ConsultationNote
        fields = [
            "findings", "impression", "advice", "recommended_tests", "urgency", "follow_up_date",
            "referral_hospital", "referral_department",
        ]
        widgets = {
            "findings": forms.Textarea(attrs={"rows": 4}),
            "impression": forms.Textarea(attrs={"rows": 3}),
            "advice": forms.Textarea(attrs={"rows": 4}),
            "recommended_tests": forms.Textarea(attrs={"rows": 2}),
            # ISO whatever the language: a date input holding 2026/11/21 shows (and saves) as empty.
            "follow_up_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def clean_follow_up_date(self) -> date | None:
        value: date | None = self.cleaned_data.get("follow_up_date")
        if value is not None and value < timezone.localdate():
            raise forms.ValidationError(_("The follow-up date cannot be in the past."))
        return value


class HomeVisitRequestForm(forms.Form):
    address = forms.CharField(label=_("Address for the visit"), max_length=300)
    preferred_dates = forms.CharField(
        label=_("Which days suit you?"), max_length=200, help_text=_("For example: weekday mornings.")
    )


class HomeVisitScheduleForm(forms.Form):
    scheduled_for = forms.DateTimeField(
        label=_("Visit date and time"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean_scheduled_for(self) -> Any:
        value = self.cleaned_data["scheduled_for"]
        if value < timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return value

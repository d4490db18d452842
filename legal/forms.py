from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.models import Kind, Skill
from legal.models import MAX_YUAN, Channel, CityRates, Result, SessionMode
from privacy.forms import SeparateConsentForm
from privacy.models import Purpose

ISO_DATE = "%Y-%m-%d"


class YuanField(forms.DecimalField):
    """An amount in yuan: not negative, at most 2 decimals, nothing absurd; errors in plain words."""

    # Text, not type="number": a browser empties a number input that holds "1,650.50" or "802元".
    widget = forms.TextInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("max_value", MAX_YUAN)
        above_zero = (kwargs["min_value"] or 0) > 0
        super().__init__(max_digits=10, decimal_places=2, **kwargs)
        self.error_messages.update(
            {
                "invalid": _("Write the amount in figures, for example 802 or 1650.50."),
                "min_value": _("The amount must be more than zero.")
                if above_zero
                else _("The amount cannot be negative."),
                "max_value": _("This amount is too large. Please check it."),
                "max_decimal_places": _("Use at most 2 digits after the decimal point (fen)."),
                "max_digits": _("This amount is too large. Please check it."),
                "max_whole_digits": _("This amount is too large. Please check it."),
            }
        )
        self.widget.attrs.update({"inputmode": "decimal"})

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        if isinstance(value, str):
            value = value.strip().replace(",", "").replace("，", "").removesuffix("元").strip()
        result: Decimal | None = super().to_python(value)
        return result

    def run_validators(self, value: Any) -> None:
        # A huge amount fails both the digits and the maximum check, in the same words: say it once.
        try:
            super().run_validators(value)
        except ValidationError as error:
            raise ValidationError(list(dict.fromkeys(error.messages))) from None


class DateInput(forms.DateInput):
    """A date picker. Its value is ISO whatever the language: a browser shows a date input that
    holds the Chinese format (2026/11/21) as empty, and a required one then blocks the form."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None, format: str | None = None) -> None:
        super().__init__(attrs, format=format or ISO_DATE)


def _city_choices() -> list[tuple[str, str]]:
    cities = CityRates.objects.order_by("city").values_list("city", flat=True).distinct()
    return [(c, c) for c in cities]


class LegalIntakeForm(SeparateConsentForm):
    consent_purpose = Purpose.SHARE_EMPLOYER
    consent_field = "share_consent"

    skill = forms.ModelChoiceField(
        label=_("What is the dispute about?"),
        queryset=Skill.objects.filter(kind=Kind.LEGAL, is_active=True),
        empty_label=None,
    )
    job_title = forms.CharField(label=_("Your job"), max_length=100)
    employment_start = forms.DateField(label=_("Working there since"), widget=DateInput)
    employment_end = forms.DateField(
        label=_("Working there until"),
        required=False,
        widget=DateInput,
        help_text=_("Leave empty if you still work there."),
    )
    employer_name = forms.CharField(label=_("Employer (company name)"), max_length=200)
    employer_address = forms.CharField(label=_("Employer's address"), max_length=300, required=False)
    employer_contact = forms.CharField(label=_("Contact person at the employer"), max_length=100, required=False)
    employer_phone = forms.CharField(label=_("Employer's phone"), max_length=30, required=False)
    what_happened = forms.CharField(
        label=_("What happened?"), max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )
    city = forms.ChoiceField(label=_("City where you work"), choices=_city_choices)
    monthly_wage = YuanField(label=_("Your monthly wage (yuan)"))
    amount_received = YuanField(label=_("Amount you received (yuan)"), initial=Decimal("0"))
    # Optional: nothing written stays nothing on the record, not "0.00" (the page prefills the estimate).
    amount_claimed = YuanField(
        label=_("Amount you believe you are owed (yuan, optional)"),
        required=False,
        help_text=_(
            "Filled in from the estimate above when there is one: change it if you think otherwise, or leave it "
            "empty if you do not know."
        ),
    )
    sick_days = forms.IntegerField(label=_("Days of sick leave"), min_value=0, max_value=366, required=False)
    overtime_weekday_hours = forms.DecimalField(
        label=_("Overtime hours on working days"), min_value=0, max_value=5000, decimal_places=1, required=False
    )
    overtime_restday_hours = forms.DecimalField(
        label=_("Overtime hours on rest days"), min_value=0, max_value=5000, decimal_places=1, required=False
    )
    overtime_holiday_hours = forms.DecimalField(
        label=_("Overtime hours on public holidays"), min_value=0, max_value=5000, decimal_places=1, required=False
    )
    dismissal_unlawful = forms.BooleanField(label=_("I was dismissed without a lawful reason"), required=False)
    desired_outcome = forms.CharField(
        label=_("What would you like to happen?"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    materials_later = forms.BooleanField(
        label=_("I do not have all the documents yet: send without them"), required=False
    )
    share_consent = forms.BooleanField(
        label=_("I agree that the union lawyer shares these details with my employer to mediate."),
        error_messages={"required": _("Mediation is not possible without sharing the details with the employer.")},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("employment_start"), data.get("employment_end")
        today = timezone.localdate()
        if start and start > today:
            self.add_error("employment_start", _("This date is in the future."))
        if start and end and end < start:
            self.add_error("employment_end", _("The end cannot be before the start."))
        return data


# The figures the estimate needs, all optional: the intake page asks for the estimate while the
# worker is still filling in the form, before anything is sent.
ESTIMATE_FIELDS = (
    "skill", "city", "monthly_wage", "amount_received", "employment_start", "employment_end", "sick_days",
    "overtime_weekday_hours", "overtime_restday_hours", "overtime_holiday_hours", "dismissal_unlawful",
)


class EstimateForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ESTIMATE_FIELDS:
            field = copy.deepcopy(LegalIntakeForm.base_fields[name])
            field.required = False
            self.fields[name] = field


class ContactForm(forms.Form):
    day = forms.DateField(label=_("Date"), widget=DateInput, initial=timezone.localdate)
    channel = forms.ChoiceField(label=_("How"), choices=Channel.choices)
    result = forms.CharField(label=_("Result"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class SessionForm(forms.Form):
    day = forms.DateField(label=_("Date"), widget=DateInput, initial=timezone.localdate)
    mode = forms.ChoiceField(label=_("How"), choices=SessionMode.choices)
    attendees = forms.CharField(label=_("Who attended"), max_length=300)
    notes = forms.CharField(label=_("Notes"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class OutcomeForm(forms.Form):
    result = forms.ChoiceField(label=_("Result"), choices=Result.choices)
    amount_agreed = YuanField(label=_("Amount agreed (yuan)"), required=False)
    payment_due = forms.DateField(label=_("Payment due by"), widget=DateInput, required=False)
    terms = forms.CharField(
        label=_("Terms of the agreement"), max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    arbitration_deadline = forms.DateField(
        label=_("Deadline to file for arbitration"), widget=DateInput, required=False
    )


class PaymentForm(forms.Form):
    amount = YuanField(label=_("Amount received (yuan)"), min_value=Decimal("0.01"))
    day = forms.DateField(label=_("Received on"), widget=DateInput, initial=timezone.localdate)

    def clean_day(self) -> date:
        day: date = self.cleaned_data["day"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("This date is in the future."))
        return day


class WorkLogForm(forms.Form):
    day = forms.DateField(label=_("Date"), widget=DateInput, initial=timezone.localdate)
    hours = forms.DecimalField(label=_("Hours"), min_value=Decimal("0.25"), max_value=24, decimal_places=2)
    note = forms.CharField(label=_("What was done"), max_length=300, required=False)

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from consult.models import (
    Case,
    DocumentKind,
    Kind,
    Priority,
    Professional,
    Skill,
    normalize_phone,
    phone_validator,
)


class PhoneField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Mobile phone"))
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "tel", "autocomplete": "tel"})

    def to_python(self, value: Any) -> str:
        return normalize_phone(super().to_python(too_long_refused(self, value)) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        phone_validator(value)


def too_long_refused(field: forms.CharField, value: Any) -> Any:
    """`value` as typed, refused when longer than the field's maximum: a field that drops spaces
    and dashes before checking would otherwise take any number of them (the page's input stops at
    the maximum anyway; the API's schema states it)."""
    if isinstance(value, str) and field.max_length is not None and len(value) > field.max_length:
        raise forms.ValidationError(
            field.error_messages.get("max_length") or MaxLengthValidator.message,
            code="max_length",
            params={"limit_value": field.max_length, "show_value": len(value)},
        )
    return value


class PhoneLoginForm(AuthenticationForm):
    username = PhoneField()

    error_messages = {
        "invalid_login": _("The phone number or password is not right. Please try again."),
        "inactive": _("This account is not active."),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # AuthenticationForm caps the input at the model's 11 digits; a browser would then refuse
        # "+86 138-0000-0001", which this field normalises.
        field = self.fields["username"]
        declared = self.base_fields["username"]
        assert isinstance(field, forms.CharField) and isinstance(declared, forms.CharField)
        field.max_length = declared.max_length
        field.widget.attrs["maxlength"] = str(declared.max_length)


class CaseSubmitForm(forms.Form):
    description = forms.CharField(
        label=_("What do you need help with?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    elderly = forms.BooleanField(
        label=_("The person who needs help is 65 or older"), required=False
    )

    def priority(self) -> int:
        return Priority.ELDERLY if self.cleaned_data.get("elderly") else Priority.NORMAL


class CatalogueSearchForm(forms.Form):
    """The catalogue's search: a plain GET, so it works without JavaScript."""

    q = forms.CharField(
        label=_("Search the services"),
        max_length=50,
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "enterkeyhint": "search"}),
    )


class ChatHistoryForm(forms.Form):
    """Which page of earlier chat messages: those numbered below `before` (none: the newest)."""

    before = forms.IntegerField(min_value=1, max_value=2**31 - 1, required=False)


class CaseDetailsForm(forms.Form):
    description = forms.CharField(
        label=_("What do you need help with?"),
        help_text=_("You can correct or add to it while the case is open; the change shows on the timeline."),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=500, required=False)


def _candidate_label(professional: Any) -> str:
    return _("%(name)s · %(org)s · %(load)s open") % {
        "name": professional.user.name,
        "org": professional.organisation,
        "load": professional.load,
    }


class ReassignForm(forms.Form):
    professional = forms.ModelChoiceField(
        label=_("Give the case to"), queryset=Professional.objects.none(), empty_label=None
    )

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        from consult.selectors import reassign_candidates

        super().__init__(*args, **kwargs)
        field = self.fields["professional"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = reassign_candidates(case)
        field.label_from_instance = _candidate_label  # type: ignore[method-assign,assignment]


class OnDutyForm(forms.Form):
    on_duty = forms.BooleanField(required=False)


KIND_DOCUMENTS = {
    Kind.MEDICAL: [DocumentKind.EXAM_REPORT, DocumentKind.IMAGING, DocumentKind.PRESCRIPTION, DocumentKind.ID,
                   DocumentKind.OTHER],
    Kind.LEGAL: [DocumentKind.LABOUR_CONTRACT, DocumentKind.PAYSLIP, DocumentKind.SICK_LEAVE, DocumentKind.ID,
                 DocumentKind.OTHER],
}


class DocumentKindForm(forms.Form):
    kind = forms.ChoiceField(label=_("What are these files?"))

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["kind"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(k.value, k.label) for k in KIND_DOCUMENTS[Kind(kind)]]


class TrackForm(forms.Form):
    reference = forms.CharField(label=_("Case reference"), max_length=20)
    phone_last4 = forms.RegexField(
        label=_("Last 4 digits of your phone number"),
        regex=r"^\d{4}$",
        error_messages={"invalid": _("Write the last 4 digits of the phone number, for example 8000.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone_last4"].widget.attrs.update({"inputmode": "numeric", "autocomplete": "off"})
        self.fields["reference"].widget.attrs.update({"autocapitalize": "characters", "autocomplete": "off"})

    def clean_reference(self) -> str:
        return "".join(str(self.cleaned_data["reference"]).split()).upper()


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("How satisfied are you?"), choices=[(i, str(i)) for i in range(5, 0, -1)], coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(label=_("Anything to tell us? (optional)"), max_length=1000, required=False)


class PosterForm(forms.Form):
    skill = forms.ModelChoiceField(label=_("Service"), queryset=Skill.objects.filter(is_active=True))
    place = forms.CharField(
        label=_("Where the poster goes"), max_length=100,
        help_text=_("For example: 青山村村委会, hospital hall, union office."),
    )


class ReportFilterForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    skill = forms.ModelChoiceField(label=_("Service"), queryset=Skill.objects.all(), required=False)
    organisation = forms.ChoiceField(label=_("Organisation"), required=False)
    professional = forms.ModelChoiceField(
        label=_("Professional"), queryset=Professional.objects.select_related("user"), required=False
    )

    def __init__(self, *args: Any, kinds: frozenset[str], **kwargs: Any) -> None:
        """`kinds`: the coordinator's domains; the services, organisations and professionals of
        the others are neither offered nor accepted."""
        super().__init__(*args, **kwargs)
        professionals = Professional.objects.filter(kind__in=sorted(kinds))
        organisations = professionals.order_by("organisation").values_list("organisation", flat=True).distinct()
        field = self.fields["organisation"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *((o, o) for o in organisations)]
        skill = self.fields["skill"]
        professional = self.fields["professional"]
        assert isinstance(skill, forms.ModelChoiceField) and isinstance(professional, forms.ModelChoiceField)
        skill.queryset = Skill.objects.filter(kind__in=sorted(kinds))
        professional.queryset = professionals.select_related("user")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

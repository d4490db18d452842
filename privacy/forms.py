"""The separate consent an intake form carries (PIPL art. 29): the text in force, shown apart from
the rest of the form, and the version the person read, posted back with the answer."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from privacy.models import ConsentText
from privacy.selectors import consent_text_current
from privacy.services import CONSENT_TEXT_CHANGED


def consent_version_field() -> forms.IntegerField:
    return forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        error_messages={"required": _("Send the version of the consent text that was shown.")},
    )


class SeparateConsentForm(forms.Form):
    """A form with a consent checkbox (`consent_field`) and the `consent_version` posted back: the
    checkbox says the current text's agreement sentence, and an answer to an older text is refused
    (the page then shows the new one)."""

    consent_purpose: str
    consent_field: str
    consent_version = consent_version_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consent_text: ConsentText = consent_text_current(purpose=self.consent_purpose)
        self.fields[self.consent_field].label = self.consent_text.in_language()["agree"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        version = data.get("consent_version")
        if version is not None and version != self.consent_text.version:
            self.add_error(self.consent_field, CONSENT_TEXT_CHANGED)
        return data


class ErasureRequestForm(forms.Form):
    reason = forms.CharField(
        label=_("Why? (optional)"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ErasureDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("approve", _("Erase the personal details")), ("refuse", _("Refuse"))],
        widget=forms.RadioSelect,
    )
    answer = forms.CharField(
        label=_("Answer to the resident"),
        help_text=_("Required to refuse: the reason the law gives for keeping the details."),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "refuse" and not (data.get("answer") or "").strip():
            self.add_error("answer", _("Say why the request is refused: the resident is told."))
        return data

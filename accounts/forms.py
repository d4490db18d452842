from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from accounts.models import Purpose
from accounts.passwords import rules_html
from accounts.services import CODE_DIGITS, clean_code
from consult.forms import PhoneField, too_long_refused
from consult.models import User

code_validator = RegexValidator(
    regex=rf"^\d{{{CODE_DIGITS}}}$", message=_("Write the 6 digits of the code from the SMS.")
)


class CodeField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Code from the SMS"))
        kwargs.setdefault("max_length", 20)  # room for spaces typed between the digits
        super().__init__(**kwargs)
        # The phone offers the code from the SMS above the keyboard (autocomplete one-time-code).
        self.widget.attrs.update({"inputmode": "numeric", "autocomplete": "one-time-code", "class": "code"})

    def to_python(self, value: Any) -> str:
        return clean_code(super().to_python(too_long_refused(self, value)) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        code_validator(value)


def _validated_password(form: forms.Form, field: str, phone: str, name: str = "") -> None:
    password = form.cleaned_data.get(field)
    if password:
        try:
            password_validation.validate_password(password, User(phone=phone, name=name))
        except ValidationError as error:
            form.add_error(field, error)


def _show_rules(form: forms.Form, field: str) -> None:
    # Before the first try, not only in the error after it; escaped text, the list is markup.
    help_text = form.fields[field].help_text
    form.fields[field].help_text = format_html("{}{}", help_text, mark_safe(rules_html()))  # noqa: S308


class PhoneForm(forms.Form):
    """The number a code is sent to."""

    phone = PhoneField()


class NewPhoneForm(PhoneForm):
    phone = PhoneField(label=_("New phone number"))


class SignupForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=100)
    phone = PhoneField()
    password = forms.CharField(
        label=_("Password (you may leave it empty)"),
        help_text=_("Without a password, you log in with a code sent to your phone."),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _show_rules(self, "password")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _validated_password(self, "password", data.get("phone", ""), data.get("name", ""))
        return data


class CodeForm(forms.Form):
    code = CodeField()


class ResetForm(forms.Form):
    code = CodeField()
    password = forms.CharField(
        label=_("New password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password_again = forms.CharField(
        label=_("New password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, phone: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phone = phone
        _show_rules(self, "password")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", _("The two passwords are not the same."))
        else:
            _validated_password(self, "password", self.phone)
        return data


# --- the API's requests, one form each: the same fields and rules as the pages ----------------


class CodeRequestForm(PhoneForm):
    purpose = forms.ChoiceField(label=_("What the code is for"), choices=Purpose.choices)


class PhoneCodeForm(PhoneForm, CodeForm):
    pass


class SignupCodeForm(SignupForm, CodeForm):
    pass


class ResetCodeForm(PhoneForm, CodeForm):
    password = forms.CharField(label=_("New password"), strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _validated_password(self, "password", data.get("phone", ""))
        return data

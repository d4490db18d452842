"""Password rules in the site's own words where Django's are not translated.

Django 5.2's "too short" message changed its msgid (%d for %(min_length)d) and its Chinese
catalogue still holds the old one, so a Chinese page showed that one rule in English.
"""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.utils.translation import ngettext


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    def get_error_message(self) -> str:
        return ngettext(
            "This password is too short: use at least %(min_length)d character.",
            "This password is too short: use at least %(min_length)d characters.",
            self.min_length,
        ) % {"min_length": self.min_length}


def rules_html() -> str:
    """The rules a new password must meet, as a list to show under the field before the first try."""
    return str(password_validation.password_validators_help_text_html())

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from notices.models import Channel


class NoticePreferenceForm(forms.Form):
    channel = forms.ChoiceField(label=_("Send notices by"), choices=Channel.choices, widget=forms.RadioSelect)
    email = forms.EmailField(label=_("E-mail address"), required=False,
                             help_text=_("Only needed if you choose e-mail."))
    opted_out = forms.BooleanField(
        label=_("Send me no notices"), required=False,
        help_text=_("Codes you ask for to sign in are still sent."),
    )

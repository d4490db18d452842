"""What a notice can say. Chinese SMS providers send only templates registered with them (the
text, with named blanks, approved in advance) under a registered signature: a kind is such a
template. Its code at the provider comes from the settings (SMS_TEMPLATE_<KIND>); its text is
kept here, in English with the Chinese in the translations, for the console and file backends,
e-mails and the case timeline. Registering a template at a provider means copying the Chinese text
here, with ${name} for each %(name)s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _


class NoticeKind(models.TextChoices):
    VERIFICATION_CODE = "verification_code", _("verification code")
    CASE_ACCEPTED = "case_accepted", _("case accepted")
    NEW_MESSAGE = "new_message", _("new message")
    VISIT_SCHEDULED = "visit_scheduled", _("home visit scheduled")
    VISIT_CHANGED = "visit_changed", _("home visit changed")
    VISIT_REMINDER = "visit_reminder", _("home visit tomorrow")
    SUMMARY_READY = "summary_ready", _("summary ready")
    CASE_RESOLVED = "case_resolved", _("case resolved")
    CASE_CLOSED = "case_closed", _("case closed")
    CASE_RETURNED = "case_returned", _("case returned to the queue")
    CASE_ASSIGNED = "case_assigned", _("case assigned")
    CASE_OVERDUE = "case_overdue", _("case past its promised response time")
    CASES_OVERDUE = "cases_overdue", _("cases past their promise")
    NOTICES_FAILED = "notices_failed", _("notices failed")
    FOLLOW_UP_DUE = "follow_up_due", _("follow-up tomorrow")
    PAYMENT_DUE = "payment_due", _("payment due tomorrow")
    ARBITRATION_DEADLINE = "arbitration_deadline", _("arbitration deadline near")
    ERASURE_APPROVED = "erasure_approved", _("erasure done")
    ERASURE_REFUSED = "erasure_refused", _("erasure refused")


@dataclass(frozen=True)
class Template:
    kind: str
    # The parameters in the order of the text: Tencent Cloud takes them as a list in this order,
    # Alibaba Cloud as a JSON object by name.
    params: tuple[str, ...]
    text: Promise
    # Sent during quiet hours too (a sign-in code is wanted now, not at 7 in the morning).
    urgent: bool = False
    # Sent even to someone who opted out of notices: they asked for it themselves.
    essential: bool = False
    # Parameters blanked on the row once it is sent or has failed: a one-time code is kept hashed
    # by the accounts, and the outbox must not keep a readable copy.
    secret: tuple[str, ...] = ()
    # The e-mail's subject (with the same parameters); by default the kind's name.
    subject: Promise | None = None


TEMPLATES: dict[str, Template] = {
    t.kind: t
    for t in [
        Template(
            NoticeKind.VERIFICATION_CODE, ("code",),
            _("Your verification code is %(code)s. It is valid for 5 minutes; do not tell it to anyone."),
            urgent=True, essential=True, secret=("code",),
        ),
        Template(
            NoticeKind.CASE_ACCEPTED, ("case", "professional", "by", "link"),
            _("Case %(case)s was accepted by %(professional)s. Expect an answer by %(by)s: %(link)s"),
        ),
        Template(
            NoticeKind.NEW_MESSAGE, ("case", "link"),
            _("You have a new message on case %(case)s: %(link)s"),
            subject=_("New message on your case %(case)s"),
        ),
        Template(
            NoticeKind.VISIT_SCHEDULED, ("case", "when", "link"),
            _("A home visit for case %(case)s is booked for %(when)s: %(link)s"),
        ),
        Template(
            NoticeKind.VISIT_CHANGED, ("case", "when", "link"),
            _("The home visit for case %(case)s has changed: %(when)s. Details: %(link)s"),
        ),
        Template(
            NoticeKind.VISIT_REMINDER, ("case", "when", "link"),
            _("Reminder: the home visit for case %(case)s is tomorrow, %(when)s: %(link)s"),
        ),
        Template(
            NoticeKind.SUMMARY_READY, ("case", "link"),
            _("The summary of case %(case)s is ready: %(link)s"),
        ),
        Template(
            NoticeKind.CASE_RESOLVED, ("case", "link"),
            _("Case %(case)s is resolved. Please rate the help you got: %(link)s"),
        ),
        Template(
            NoticeKind.CASE_CLOSED, ("case", "link"),
            _("Case %(case)s is closed. Please rate the help you got: %(link)s"),
        ),
        Template(
            NoticeKind.CASE_RETURNED, ("case", "link"),
            _("Case %(case)s is back in the queue and will be given to another professional: %(link)s"),
        ),
        Template(
            NoticeKind.CASE_ASSIGNED, ("case", "service", "link"),
            _("A new case %(case)s (%(service)s) was assigned to you: %(link)s"),
        ),
        Template(
            NoticeKind.CASE_OVERDUE, ("case", "hours", "link"),
            _("Case %(case)s has waited past its promised %(hours)s hours: %(link)s"),
        ),
        Template(
            NoticeKind.CASES_OVERDUE, ("count", "link"),
            _("%(count)s cases are waiting past their promised response time: %(link)s"),
        ),
        Template(
            NoticeKind.NOTICES_FAILED, ("count", "link"),
            _("%(count)s notices could not be delivered: %(link)s"),
        ),
        Template(
            NoticeKind.FOLLOW_UP_DUE, ("case", "date", "link"),
            _("Reminder: your follow-up for case %(case)s is due tomorrow, %(date)s: %(link)s"),
        ),
        Template(
            NoticeKind.PAYMENT_DUE, ("case", "date", "link"),
            _("The payment agreed in case %(case)s is due tomorrow, %(date)s, and not yet received in full: %(link)s"),
        ),
        Template(
            NoticeKind.ARBITRATION_DEADLINE, ("case", "days", "date", "link"),
            _("Case %(case)s: %(days)s days left to file for labour arbitration (by %(date)s): %(link)s"),
        ),
        Template(
            NoticeKind.ERASURE_APPROVED, ("case", "link"),
            _("As you asked, the personal details of case %(case)s were erased: %(link)s"),
        ),
        Template(
            NoticeKind.ERASURE_REFUSED, ("case", "link"),
            _("Your request to erase the personal details of case %(case)s was not granted. Why: %(link)s"),
        ),
    ]
}


def template_for(kind: str) -> Template:
    try:
        return TEMPLATES[kind]
    except KeyError:
        raise ValueError(f"unknown notice kind {kind!r}") from None


def render(kind: str, params: dict[str, Any], language: str) -> str:
    """The notice's text in `language`, as the provider's template would read."""
    template = template_for(kind)
    values = {name: params.get(name, "") for name in template.params}
    with translation.override(language):
        return str(template.text) % values


def subject(kind: str, params: dict[str, Any], language: str) -> str:
    template = template_for(kind)
    with translation.override(language):
        if template.subject is None:
            return capfirst(str(NoticeKind(kind).label))
        return str(template.subject) % {name: params.get(name, "") for name in template.params}


def masked(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    secret = template_for(kind).secret
    return {name: "******" if name in secret else value for name, value in params.items()}


def missing_params(kind: str, params: dict[str, Any]) -> list[str]:
    return [name for name in template_for(kind).params if name not in params]

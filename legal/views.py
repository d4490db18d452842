from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import cn2an
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_GET, require_POST

from consult import intake, selectors
from consult.errors import CaseError
from consult.figures import rows_on
from consult.models import Case, DocumentKind, Kind, Professional, Skill, Status, User
from consult.once import submit_once
from consult.views import refused
from legal import estimate, services
from legal.estimate import step_text, yuan
from legal.forms import ContactForm, EstimateForm, LegalIntakeForm, OutcomeForm, PaymentForm, SessionForm, WorkLogForm
from legal.limitation import Limitation, arbitration_limitation
from legal.models import (
    ClaimEstimate,
    EmployerContact,
    LegalIntake,
    MediationOutcome,
    MediationSession,
    Result,
    WorkLog,
)

INTAKE_KINDS: list[str] = [
    DocumentKind.LABOUR_CONTRACT,
    DocumentKind.PAYSLIP,
    DocumentKind.SICK_LEAVE,
    DocumentKind.OTHER,
]


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def intake_view(request: HttpRequest, skill: Skill) -> HttpResponse:
    """The labour-dispute intake: facts, amounts, evidence by kind, consent to share with the employer.
    With `?from=<reference>`, the resident's own consultation it comes from (an injury at work):
    its words fill "what happened" and the documents they chose to carry are already attached."""
    user = _user(request)
    referred_from = _referral_source(request, user)
    carried: list[intake.Staged] = []
    initial: dict[str, Any] = {}
    if referred_from is not None:
        tokens = request.session.get(intake.referral_session_key(referred_from.reference), [])
        carried = intake.parked_files(user, tokens, INTAKE_KINDS)
        initial["what_happened"] = referred_from.description
    response = intake.page(
        request,
        skill,
        form_class=LegalIntakeForm,
        kinds=INTAKE_KINDS,
        open_case=partial(services.legal_case_from_form, referred_from=referred_from),
        template="legal/intake.html",
        steps=(gettext_lazy("Work and pay"), gettext_lazy("What happened and send")),
        initial=initial,
        carried=carried,
        context={"referred_from": referred_from},
    )
    if referred_from is not None and isinstance(response, HttpResponseRedirect | JsonResponse):
        # Sent: the new case took the copies.
        request.session.pop(intake.referral_session_key(referred_from.reference), None)
    return response


def _referral_source(request: HttpRequest, user: User) -> Case | None:
    """The consultation named by `?from=`: only the resident's own medical case (else 404)."""
    reference = request.GET.get("from", "")
    if not reference:
        return None
    case = selectors.case_get_for_user(user=user, reference=reference)
    if case.resident_id != user.pk or case.kind != Kind.MEDICAL or case.anonymised_at is not None:
        raise Http404
    return case


@require_GET
@login_required
def estimate_preview(request: HttpRequest) -> HttpResponse:
    """What the law provides for the figures typed so far, shown on the intake before sending:
    the same rule and rates the case will be estimated with once sent. Empty when no rule
    applies yet (another dispute, a figure missing)."""
    form = EstimateForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    if not (data.get("skill") and data.get("city") and data.get("monthly_wage") is not None):
        return HttpResponse("")
    draft = LegalIntake(
        city=data["city"],
        monthly_wage=data["monthly_wage"],
        amount_received=data.get("amount_received") or Decimal(0),
        employment_start=data.get("employment_start") or timezone.localdate(),
        employment_end=data.get("employment_end"),
        sick_days=data.get("sick_days"),
        overtime_weekday_hours=data.get("overtime_weekday_hours"),
        overtime_restday_hours=data.get("overtime_restday_hours"),
        overtime_holiday_hours=data.get("overtime_holiday_hours"),
        dismissal_unlawful=bool(data.get("dismissal_unlawful")),
    )
    if estimate.RULE_FOR_SKILL.get(data["skill"].code) == estimate.DisputeFacts.DISMISSAL and not data.get(
        "employment_start"
    ):
        return HttpResponse("")
    result = services.estimate_for(draft, data["skill"])
    if result is None:
        return HttpResponse("")
    rates = services.rates_for(draft.city)
    context = {
        "estimate": {"owed": result.owed, "entitled": result.entitled, "rates": rates},
        "estimate_steps": [step_text(s) for s in result.steps],
        "preview": True,
    }
    return render(request, "legal/_estimate.html", context)


def capitals(amount: Any) -> str:
    """An amount in Chinese capital numerals, as contracts and receipts write it (大写)."""
    return str(cn2an.an2cn(f"{amount:.2f}", "rmb"))


def resolve_blocker(case: Case) -> str | None:
    if not MediationOutcome.objects.filter(case=case).exists():
        return _("Record the outcome of the mediation before marking the case resolved.")
    return None


def _estimate_context(case: Case) -> dict[str, Any]:
    claim = ClaimEstimate.objects.filter(case=case).select_related("rates").first()
    return {"estimate": claim, "estimate_steps": [step_text(s) for s in claim.steps] if claim else []}


def summary(case: Case) -> tuple[str, dict[str, Any]]:
    outcome = MediationOutcome.objects.filter(case=case).first()
    return (
        "pdf/legal_settlement.html",
        {
            "intake": LegalIntake.objects.filter(case=case).first(),
            "outcome": outcome,
            "agreed_capitals": capitals(outcome.amount_agreed) if outcome and outcome.amount_agreed is not None else "",
            "received_capitals": capitals(outcome.amount_received) if outcome else "",
            "lawyer": case.assignee,
            "lawyer_profile": getattr(case.assignee, "lawyer", None) if case.assignee else None,
            "sessions": MediationSession.objects.filter(case=case),
            **_estimate_context(case),
        },
    )


def figures(cases: QuerySet[Case]) -> dict[str, Any]:
    """Disputes settled, money agreed and paid to workers, and what the fund paid for it."""
    outcomes = rows_on(MediationOutcome.objects.all(), cases).aggregate(
        settled=Count("pk", filter=Q(result__in=(Result.SETTLED, Result.PARTLY))),
        agreed=Sum("amount_agreed", filter=Q(result__in=(Result.SETTLED, Result.PARTLY))),
        secured=Sum("amount_received"),
    )
    fund = rows_on(WorkLog.objects.all(), cases).aggregate(hours=Sum("hours"), cost=Sum("cost"))
    # SQLite sums decimals as floats: put the two places back, as PostgreSQL gives them.
    return {
        "disputes_settled": outcomes["settled"],
        "compensation_agreed": yuan(Decimal(outcomes["agreed"] or 0)),
        "compensation_secured": yuan(Decimal(outcomes["secured"] or 0)),
        "fund_hours": yuan(Decimal(fund["hours"] or 0)),
        "fund_cost": yuan(Decimal(fund["cost"] or 0)),
    }


def case_context(case: Case, user: User) -> dict[str, Any]:
    is_assignee = case.assignee is not None and case.assignee.user_id == user.pk
    recording = is_assignee and case.status in (Status.ACTIVE, Status.RESOLVED)
    outcome = MediationOutcome.objects.filter(case=case).first()
    intake = LegalIntake.objects.filter(case=case).first()
    limitation = (
        arbitration_limitation(intake, estimate.RULE_FOR_SKILL.get(case.skill.code)) if intake is not None else None
    )
    return {
        "intake": intake,
        # Shown to the worker and the lawyer until the lawyer types the deadline with the outcome.
        "limitation": limitation if outcome is None or outcome.arbitration_deadline is None else None,
        "contacts": EmployerContact.objects.filter(case=case),
        "sessions": MediationSession.objects.filter(case=case),
        "outcome": outcome,
        "work_logs": WorkLog.objects.filter(case=case) if (is_assignee or user.is_coordinator) else None,
        # One page holds all these forms, several with a `day`: ids of their own, so that each
        # label names its own field.
        "contact_form": ContactForm(auto_id="id_contact_%s") if recording else None,
        "session_form": SessionForm(auto_id="id_session_%s") if recording else None,
        "outcome_form": OutcomeForm(initial=_outcome_initial(outcome, limitation), auto_id="id_outcome_%s")
        if recording
        else None,
        "payment_form": PaymentForm(auto_id="id_payment_%s")
        if (is_assignee or user.is_coordinator) and outcome is not None
        else None,
        "work_log_form": WorkLogForm(auto_id="id_hours_%s") if recording else None,
        **_estimate_context(case),
    }


def _outcome_initial(outcome: MediationOutcome | None, limitation: Limitation | None) -> dict[str, Any]:
    if outcome is None:
        # The deadline worked out from the intake, for the lawyer to confirm rather than type.
        return {"arbitration_deadline": limitation.deadline} if limitation and limitation.deadline else {}
    return {name: getattr(outcome, name) for name in services.OUTCOME_FIELDS}


def _assignee(request: HttpRequest, case: Case) -> Professional:
    if case.assignee is None or case.assignee.user_id != _user(request).pk:
        raise Http404
    return case.assignee


Action = Callable[[HttpRequest, Case, dict[str, Any]], object]

ACTIONS: dict[str, tuple[type[forms.Form], Action, str]] = {
    "contact": (
        ContactForm,
        lambda r, c, d: services.contact_add(case=c, professional=_assignee(r, c), **d),
        gettext_noop("The contact with the employer is recorded."),
    ),
    "session": (
        SessionForm,
        lambda r, c, d: services.session_add(case=c, professional=_assignee(r, c), **d),
        gettext_noop("The mediation session is recorded."),
    ),
    "outcome": (
        OutcomeForm,
        lambda r, c, d: services.outcome_record(case=c, professional=_assignee(r, c), **d),
        gettext_noop("The outcome is recorded."),
    ),
    "payment": (
        PaymentForm,
        lambda r, c, d: services.payment_record(case=c, user=_user(r), **d),
        gettext_noop("The payment is recorded."),
    ),
    "hours": (
        WorkLogForm,
        lambda r, c, d: services.work_log_add(case=c, professional=_assignee(r, c), **d),
        gettext_noop("The hours are recorded."),
    ),
}


@require_POST
@login_required
@submit_once
def record(request: HttpRequest, reference: str, what: str) -> HttpResponse:
    """One endpoint for the lawyer's records: parse the form, call its service, back to the case."""
    case = selectors.case_get_for_user(user=_user(request), reference=reference)
    # These records exist only for labour disputes: on any other case the page is as absent as the case.
    if case.kind != Kind.LEGAL or what not in ACTIONS:
        raise Http404
    form_class, action, done = ACTIONS[what]
    form = form_class(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else str(error))
        return redirect("case_detail", reference=case.reference)
    try:
        action(request, case, form.cleaned_data)
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _(done))
    return redirect("case_detail", reference=case.reference)

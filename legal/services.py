"""Writes for labour disputes: intake with its claim estimate, mediation records, the outcome."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult import services as core
from consult.errors import CaseError, NotAllowed, WrongState
from consult.intake import Staged
from consult.models import Case, Kind, Professional, Skill, Status, User, Verb
from legal import estimate
from legal.models import (
    CityRates,
    ClaimEstimate,
    DisputeFacts,
    EmployerContact,
    LegalAidFund,
    LegalIntake,
    MediationOutcome,
    MediationSession,
    Result,
    WorkLog,
)
from privacy.models import ConsentChannel, Purpose
from privacy.services import consent_record

INTAKE_FIELDS = (
    "job_title",
    "employment_start",
    "employment_end",
    "employer_name",
    "employer_address",
    "employer_contact",
    "employer_phone",
    "what_happened",
    "monthly_wage",
    "amount_received",
    "amount_claimed",
    "desired_outcome",
    "city",
    "sick_days",
    "overtime_weekday_hours",
    "overtime_restday_hours",
    "overtime_holiday_hours",
    "dismissal_unlawful",
)
OUTCOME_FIELDS = ("result", "amount_agreed", "payment_due", "terms", "arbitration_deadline")


def rates_for(city: str, on: date | None = None) -> CityRates | None:
    on = on or timezone.localdate()
    return CityRates.objects.filter(city=city, effective_from__lte=on).order_by("-effective_from").first()


def estimate_for(intake: LegalIntake, skill: Skill) -> estimate.Estimate | None:
    """The estimate that applies to this dispute, or None (no rule for it, no rates for the city,
    or the figures it needs are missing)."""
    rule = estimate.RULE_FOR_SKILL.get(skill.code)
    rates = rates_for(intake.city)
    if rule is None or rates is None:
        return None
    if rule == DisputeFacts.SICK_PAY:
        if not intake.sick_days:
            return None
        return estimate.sick_pay(
            wage=intake.monthly_wage, sick_days=intake.sick_days, received=intake.amount_received, rates=rates
        )
    if rule == DisputeFacts.OVERTIME:
        hours = [intake.overtime_weekday_hours, intake.overtime_restday_hours, intake.overtime_holiday_hours]
        if not any(hours):
            return None
        return estimate.overtime(
            wage=intake.monthly_wage,
            weekday_hours=hours[0] or Decimal(0),
            restday_hours=hours[1] or Decimal(0),
            holiday_hours=hours[2] or Decimal(0),
            received=intake.amount_received,
            rates=rates,
        )
    return estimate.dismissal(
        wage=intake.monthly_wage,
        start=intake.employment_start,
        end=intake.employment_end or timezone.localdate(),
        unlawful=intake.dismissal_unlawful,
        received=intake.amount_received,
        rates=rates,
    )


def legal_case_submit(
    *,
    resident: User,
    skill: Skill,
    share_consent: bool,
    staged: list[Staged] | None = None,
    source_place: str = "",
    consent_version: int | None = None,
    consent_channel: str = ConsentChannel.PAGE,
    referred_from: Case | None = None,
    **fields: Any,
) -> tuple[Case, list[str]]:
    """Open a labour dispute, estimate the claim where a rule applies, attach the evidence.
    `referred_from`: the resident's consultation it comes from (an injury at work); each case then
    links to the other and says so on its timeline.
    The consent to give the details to the employer is recorded with the version of its text that
    was shown (`consent_version`, see privacy.services.consent_record). Returns the case and a
    message for each document that could not be attached. Raises StorageUnavailable, with nothing
    created, when the file store fails."""
    if not share_consent:
        raise CaseError(_("Consent to share the details with the employer is required for mediation."))
    if skill.kind != Kind.LEGAL:
        raise CaseError(_("Choose a type of labour dispute."))
    if referred_from is not None and (referred_from.resident_id != resident.pk or referred_from.kind != Kind.MEDICAL):
        raise CaseError(_("Only your own consultation can be carried over to the union's lawyers."))
    unknown = set(fields) - set(INTAKE_FIELDS)
    if unknown:
        raise TypeError(f"unknown intake fields: {sorted(unknown)}")
    # Files first, outside the transaction (the store may be slow or down); then the case and
    # its documents together: a store failure leaves nothing half-saved.
    with core.documents_for_intake(uploader=resident, staged=staged or []) as documents:
        with transaction.atomic():
            case = core.case_submit(
                resident=resident, skill=skill, description=fields.get("what_happened", ""), source_place=source_place
            )
            intake = LegalIntake(case=case, share_consent_at=timezone.now(), **fields)
            intake.full_clean(exclude=["case"])
            intake.save()
            consent_record(
                case=case, purpose=Purpose.SHARE_EMPLOYER, given_by=resident, version=consent_version,
                channel=consent_channel,
            )
            result = estimate_for(intake, skill)
            if result is not None:
                rates = rates_for(intake.city)
                assert rates is not None
                ClaimEstimate.objects.create(
                    case=case,
                    rule=result.rule,
                    rates=rates,
                    entitled=result.entitled,
                    owed=result.owed,
                    steps=result.steps,
                )
            problems = documents.attach(case)
            if referred_from is not None:
                Case.objects.filter(pk=case.pk).update(referred_from=referred_from)
                case.referred_from = referred_from
                carried = sum(1 for item in staged or [] if item.carried)
                core.record_event(referred_from, Verb.REFERRED_OUT, resident, reference=case.reference)
                core.record_event(case, Verb.REFERRED_IN, resident, reference=referred_from.reference, carried=carried)
    return case, problems


def legal_case_from_form(
    *,
    resident: User,
    data: dict[str, Any],
    staged: list[Staged] | None = None,
    source_place: str = "",
    channel: str = ConsentChannel.PAGE,
    referred_from: Case | None = None,
) -> tuple[Case, list[str]]:
    """Open a case from the intake form's cleaned data: the page and the API both come here."""
    fields = {k: v for k, v in data.items() if k in INTAKE_FIELDS}
    return legal_case_submit(
        resident=resident,
        skill=data["skill"],
        share_consent=data["share_consent"],
        staged=staged,
        source_place=source_place,
        consent_version=data.get("consent_version"),
        consent_channel=channel,
        referred_from=referred_from,
        **fields,
    )


def _require_legal(case: Case) -> None:
    if case.kind != Kind.LEGAL:
        raise CaseError(_("This is not a labour dispute."), code="wrong_kind")


def _lock_for_lawyer(case: Case, professional: Professional) -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require_legal(case)
    if case.assignee_id != professional.pk:
        raise NotAllowed(_("Only the lawyer the case is assigned to can record this."))
    if case.status not in (Status.ACTIVE, Status.RESOLVED):
        raise WrongState(_("Accept the case before recording the mediation."))
    return case


@transaction.atomic
def contact_add(*, case: Case, professional: Professional, day: date, channel: str, result: str) -> EmployerContact:
    case = _lock_for_lawyer(case, professional)
    contact = EmployerContact(case=case, recorded_by=professional.user, date=day, channel=channel, result=result)
    contact.full_clean(exclude=["case", "recorded_by"])
    contact.save()
    core.record_event(case, Verb.EMPLOYER_CONTACTED, professional.user, channel=channel, date=day.isoformat())
    return contact


@transaction.atomic
def session_add(
    *, case: Case, professional: Professional, day: date, mode: str, attendees: str, notes: str
) -> MediationSession:
    case = _lock_for_lawyer(case, professional)
    session = MediationSession(
        case=case, recorded_by=professional.user, date=day, mode=mode, attendees=attendees, notes=notes
    )
    session.full_clean(exclude=["case", "recorded_by"])
    session.save()
    core.record_event(case, Verb.MEDIATION_HELD, professional.user, mode=mode, date=day.isoformat())
    return session


@transaction.atomic
def outcome_record(*, case: Case, professional: Professional, **fields: Any) -> MediationOutcome:
    """Record (or correct) how the mediation ended. A settlement needs its amount and due date;
    a referral to arbitration needs the deadline to file."""
    case = _lock_for_lawyer(case, professional)
    unknown = set(fields) - set(OUTCOME_FIELDS)
    if unknown:
        raise TypeError(f"unknown outcome fields: {sorted(unknown)}")
    result = fields.get("result")
    if result in (Result.SETTLED, Result.PARTLY) and (
        fields.get("amount_agreed") is None or not fields.get("payment_due")
    ):
        raise CaseError(_("A settlement needs the amount agreed and the date it is due."))
    if result == Result.NOT_SETTLED and not fields.get("arbitration_deadline"):
        raise CaseError(_("A referral to arbitration needs the deadline to file."))
    outcome = MediationOutcome.objects.filter(case=case).first() or MediationOutcome(case=case)
    for name, value in fields.items():
        setattr(outcome, name, value)
    outcome.recorded_at = timezone.now()
    outcome.full_clean(exclude=["case"])
    outcome.save()
    core.record_event(
        case,
        Verb.OUTCOME_RECORDED,
        professional.user,
        result=str(result),
        amount_agreed=str(outcome.amount_agreed or ""),
    )
    return outcome


@transaction.atomic
def payment_record(*, case: Case, user: User, amount: Decimal, day: date) -> MediationOutcome:
    """Add a payment the worker received under the agreement (lawyer or coordinator)."""
    case = Case.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=case.pk)
    _require_legal(case)
    if not (user.is_coordinator or (case.assignee is not None and case.assignee.user_id == user.pk)):
        raise NotAllowed(_("Only the assigned lawyer or a coordinator can record a payment."))
    outcome = MediationOutcome.objects.filter(case=case).first()
    if outcome is None or outcome.result not in (Result.SETTLED, Result.PARTLY):
        raise WrongState(_("Record the settlement before its payments."))
    if amount <= 0:
        raise CaseError(_("The amount must be more than zero."))
    outcome.amount_received += amount
    outcome.received_on = day
    outcome.full_clean(exclude=["case"])
    outcome.save(update_fields=["amount_received", "received_on"])
    core.record_event(case, Verb.PAYMENT_RECEIVED, user, amount=str(amount), date=day.isoformat())
    return outcome


@transaction.atomic
def work_log_add(*, case: Case, professional: Professional, day: date, hours: Decimal, note: str = "") -> WorkLog:
    """Record the lawyer's time; its cost goes to the legal-aid fund at today's rate."""
    case = _lock_for_lawyer(case, professional)
    fund = LegalAidFund.objects.order_by("pk").first()
    if fund is None:
        raise CaseError(_("No legal-aid fund is set up yet. Please ask a coordinator."))
    log = WorkLog(
        case=case,
        lawyer=professional,
        fund=fund,
        date=day,
        hours=hours,
        note=note,
        cost=estimate.yuan(hours * fund.hourly_rate),
    )
    log.full_clean(exclude=["case", "lawyer", "fund"])
    log.save()
    return log


def fund_totals() -> dict[str, Decimal]:
    totals = WorkLog.objects.aggregate(hours=Sum("hours"), cost=Sum("cost"))
    return {"hours": totals["hours"] or Decimal(0), "cost": totals["cost"] or Decimal(0)}

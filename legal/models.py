from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from consult.models import Case, Professional, User

# Amounts are yuan with 2 places; nothing a labour dispute involves comes near 100 million.
MAX_YUAN = Decimal("99999999.99")


def yuan_field(verbose_name: StrOrPromise, **kwargs: object) -> models.DecimalField:
    return models.DecimalField(
        verbose_name,
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_YUAN)],
        **kwargs,  # type: ignore[arg-type]
    )


class CityRates(models.Model):
    """A city's figures for the claim estimate. Coordinators keep them current in the admin."""

    city = models.CharField(_("city"), max_length=100)
    effective_from = models.DateField(_("effective from"))
    minimum_wage = yuan_field(_("minimum monthly wage (yuan)"))
    average_wage = yuan_field(_("average monthly wage (yuan)"), help_text=_("Caps dismissal compensation at 3 times."))
    monthly_work_days = models.DecimalField(
        _("working days per month"), max_digits=5, decimal_places=2, default=Decimal("21.75")
    )
    sick_pay_wage_percent = models.PositiveSmallIntegerField(
        _("sick pay (percent of wage)"), default=60, validators=[MaxValueValidator(100)]
    )
    sick_pay_floor_percent = models.PositiveSmallIntegerField(
        _("sick pay floor (percent of minimum wage)"), default=80, validators=[MaxValueValidator(100)]
    )
    overtime_weekday_percent = models.PositiveSmallIntegerField(_("overtime on working days (%)"), default=150)
    overtime_restday_percent = models.PositiveSmallIntegerField(_("overtime on rest days (%)"), default=200)
    overtime_holiday_percent = models.PositiveSmallIntegerField(_("overtime on public holidays (%)"), default=300)
    unlawful_dismissal_multiplier = models.PositiveSmallIntegerField(_("unlawful dismissal multiplier"), default=2)

    class Meta:
        verbose_name = _("city rates")
        verbose_name_plural = _("city rates")
        ordering = ["city", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["city", "effective_from"], name="city_rates_once_per_date")]

    def __str__(self) -> str:
        return f"{self.city} ({self.effective_from})"


class DisputeFacts(models.TextChoices):
    """Which estimate rule applies, decided by the practice area's code."""

    SICK_PAY = "sick_pay", _("Sick pay")
    OVERTIME = "overtime", _("Overtime pay")
    DISMISSAL = "dismissal", _("Dismissal compensation")


class LegalIntake(models.Model):
    """What the worker told us when asking for mediation."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="legal")
    job_title = models.CharField(_("job"), max_length=100)
    employment_start = models.DateField(_("employed since"))
    employment_end = models.DateField(_("employed until"), null=True, blank=True)
    employer_name = models.CharField(_("employer"), max_length=200)
    employer_address = models.CharField(_("employer's address"), max_length=300, blank=True)
    employer_contact = models.CharField(_("contact person"), max_length=100, blank=True)
    employer_phone = models.CharField(_("employer's phone"), max_length=30, blank=True)
    what_happened = models.TextField(_("what happened"), max_length=4000)
    monthly_wage = yuan_field(_("monthly wage (yuan)"))
    amount_received = yuan_field(_("amount received (yuan)"), default=Decimal("0"))
    amount_claimed = yuan_field(_("amount owed, in the worker's view (yuan)"), null=True, blank=True)
    desired_outcome = models.TextField(_("desired outcome"), max_length=2000)
    city = models.CharField(_("city"), max_length=100)
    sick_days = models.PositiveSmallIntegerField(_("days of sick leave"), null=True, blank=True)
    overtime_weekday_hours = models.DecimalField(
        _("overtime hours on working days"), max_digits=7, decimal_places=1, null=True, blank=True
    )
    overtime_restday_hours = models.DecimalField(
        _("overtime hours on rest days"), max_digits=7, decimal_places=1, null=True, blank=True
    )
    overtime_holiday_hours = models.DecimalField(
        _("overtime hours on public holidays"), max_digits=7, decimal_places=1, null=True, blank=True
    )
    dismissal_unlawful = models.BooleanField(_("dismissed without a lawful reason"), default=False)
    share_consent_at = models.DateTimeField(_("consent to share details with the employer given at"))

    class Meta:
        verbose_name = _("legal intake")
        verbose_name_plural = _("legal intakes")

    def __str__(self) -> str:
        return f"{self.case.reference} · {self.employer_name}"


class ClaimEstimate(models.Model):
    """What the law provides, as estimated at intake for the lawyer to confirm."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="claim_estimate")
    rule = models.CharField(_("rule"), max_length=20, choices=DisputeFacts.choices)
    rates = models.ForeignKey(CityRates, on_delete=models.PROTECT, related_name="+")
    entitled = yuan_field(_("legal entitlement (yuan)"))
    owed = yuan_field(_("still owed (yuan)"))
    # The figures and steps, shown beside the result: [{"label": msgid, "params": {...}}].
    steps = models.JSONField(_("steps"), default=list)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("claim estimate")
        verbose_name_plural = _("claim estimates")

    def __str__(self) -> str:
        return f"{self.case.reference} {self.owed}"


class LawyerProfile(models.Model):
    professional = models.OneToOneField(Professional, on_delete=models.CASCADE, related_name="lawyer")
    union = models.CharField(_("trade union"), max_length=200)
    firm = models.CharField(_("law firm"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("lawyer profile")
        verbose_name_plural = _("lawyer profiles")

    def __str__(self) -> str:
        return f"{self.professional.user.name} · {self.firm or self.union}"


class LegalAidFund(models.Model):
    """The union fund that pays the lawyers' time, so the worker pays nothing."""

    name = models.CharField(_("name"), max_length=200)
    hourly_rate = yuan_field(_("hourly rate (yuan)"))

    class Meta:
        verbose_name = _("legal-aid fund")
        verbose_name_plural = _("legal-aid funds")

    def __str__(self) -> str:
        return self.name


class WorkLog(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="work_logs")
    lawyer = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+")
    fund = models.ForeignKey(LegalAidFund, on_delete=models.PROTECT, related_name="work_logs")
    date = models.DateField(_("date"))
    hours = models.DecimalField(
        _("hours"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.25")), MaxValueValidator(Decimal("24"))],
    )
    # The rate at the time of the work: a later change of rate does not rewrite past costs.
    cost = yuan_field(_("cost (yuan)"))
    note = models.CharField(_("what was done"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("hours worked")
        verbose_name_plural = _("hours worked")
        ordering = ["date", "id"]

    def __str__(self) -> str:
        return f"{self.case.reference} {self.hours}h"


class Channel(models.TextChoices):
    PHONE = "phone", _("Phone")
    VISIT = "visit", _("Visit")
    LETTER = "letter", _("Letter")
    ONLINE = "online", _("Online")


class EmployerContact(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="employer_contacts")
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    date = models.DateField(_("date"))
    channel = models.CharField(_("how"), max_length=10, choices=Channel.choices)
    result = models.TextField(_("result"), max_length=2000)

    class Meta:
        verbose_name = _("contact with the employer")
        verbose_name_plural = _("contacts with the employer")
        ordering = ["date", "id"]

    def __str__(self) -> str:
        return f"{self.case.reference} {self.date}"


class SessionMode(models.TextChoices):
    IN_PERSON = "in_person", _("In person")
    ONLINE = "online", _("Online")


class MediationSession(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="mediation_sessions")
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    date = models.DateField(_("date"))
    mode = models.CharField(_("how"), max_length=10, choices=SessionMode.choices)
    attendees = models.CharField(_("who attended"), max_length=300)
    notes = models.TextField(_("notes"), max_length=4000)

    class Meta:
        verbose_name = _("mediation session")
        verbose_name_plural = _("mediation sessions")
        ordering = ["date", "id"]

    def __str__(self) -> str:
        return f"{self.case.reference} {self.date}"


class Result(models.TextChoices):
    SETTLED = "settled", _("Settled")
    PARTLY = "partly", _("Partly settled")
    NOT_SETTLED = "not_settled", _("Not settled: referred to labour arbitration")
    WITHDRAWN = "withdrawn", _("Withdrawn by the worker")


class MediationOutcome(models.Model):
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="mediation_outcome")
    result = models.CharField(_("result"), max_length=12, choices=Result.choices)
    amount_agreed = yuan_field(_("amount agreed (yuan)"), null=True, blank=True)
    payment_due = models.DateField(_("payment due by"), null=True, blank=True)
    terms = models.TextField(_("terms of the agreement"), max_length=4000, blank=True)
    arbitration_deadline = models.DateField(_("deadline to file for arbitration"), null=True, blank=True)
    amount_received = yuan_field(_("amount received so far (yuan)"), default=Decimal("0"))
    received_on = models.DateField(_("last payment received on"), null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("mediation outcome")
        verbose_name_plural = _("mediation outcomes")

    def __str__(self) -> str:
        return f"{self.case.reference} {self.get_result_display()}"

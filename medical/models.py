from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.models import Case, Professional, User


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")


class UrgentSign(models.TextChoices):
    """Signs that need the emergency number now, not an online consultation."""

    CHEST_PAIN = "chest_pain", _("Chest pain or pressure")
    BREATHING = "breathing", _("Difficulty breathing")
    STROKE = "stroke", _("Face drooping, weak arm or slurred speech")
    BLEEDING = "bleeding", _("Heavy bleeding")
    FAINTING = "fainting", _("Fainting or confusion")


class MedicalIntake(models.Model):
    """What the resident told us when opening a medical consultation."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="medical")
    on_behalf = models.BooleanField(_("for a relative"), default=False)
    relationship = models.CharField(_("relationship to the patient"), max_length=50, blank=True)
    patient_name = models.CharField(_("patient's name"), max_length=100)
    patient_age = models.PositiveSmallIntegerField(_("patient's age"), validators=[MaxValueValidator(130)])
    patient_sex = models.CharField(_("patient's sex"), max_length=10, choices=Sex.choices)
    complaint = models.TextField(_("main complaint"), max_length=2000)
    since_when = models.CharField(_("since when"), max_length=100)
    conditions = models.TextField(_("existing conditions"), max_length=2000, blank=True)
    medicines = models.TextField(_("current medicines"), max_length=2000, blank=True)
    allergies = models.TextField(_("allergies"), max_length=1000, blank=True)
    urgent_signs = models.JSONField(_("urgent signs"), default=list, blank=True)
    health_consent_at = models.DateTimeField(_("consent to process health information given at"))

    class Meta:
        verbose_name = _("medical intake")
        verbose_name_plural = _("medical intakes")

    def __str__(self) -> str:
        return f"{self.case.reference} · {self.patient_name}"

    @property
    def urgent_sign_labels(self) -> list[str]:
        return [str(UrgentSign(s).label) for s in self.urgent_signs if s in UrgentSign.values]


class DoctorProfile(models.Model):
    professional = models.OneToOneField(Professional, on_delete=models.CASCADE, related_name="doctor")
    department = models.CharField(_("department"), max_length=100)
    title = models.CharField(_("title"), max_length=100, help_text=_("e.g. chief physician"))

    class Meta:
        verbose_name = _("doctor profile")
        verbose_name_plural = _("doctor profiles")

    def __str__(self) -> str:
        return f"{self.professional.user.name} · {self.title}"


class Urgency(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    SOON = "soon", _("See a doctor soon")
    NOW = "now", _("Go to hospital now")


class ConsultationNote(models.Model):
    """The doctor's written answer. Every save is also kept, whole, in the case timeline."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="consultation_note")
    author = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+")
    findings = models.TextField(_("findings from the documents"), max_length=5000)
    impression = models.TextField(_("impression"), max_length=3000)
    advice = models.TextField(_("advice"), max_length=5000)
    recommended_tests = models.TextField(_("recommended tests"), max_length=2000, blank=True)
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices, default=Urgency.ROUTINE)
    follow_up_date = models.DateField(_("follow-up date"), null=True, blank=True)
    referral_hospital = models.CharField(_("referral: hospital"), max_length=200, blank=True)
    referral_department = models.CharField(_("referral: department"), max_length=100, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    updated_at = models.DateTimeField(_("last saved"), default=timezone.now)

    class Meta:
        verbose_name = _("consultation note")
        verbose_name_plural = _("consultation notes")

    def __str__(self) -> str:
        return f"{self.case.reference} v{self.version}"


class VisitStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    SCHEDULED = "scheduled", _("Scheduled")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class HomeVisit(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="home_visits")
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    address = models.CharField(_("address"), max_length=300)
    preferred_dates = models.CharField(_("preferred dates"), max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=VisitStatus.choices, default=VisitStatus.REQUESTED)
    scheduled_for = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("home visit")
        verbose_name_plural = _("home visits")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.case.reference} · {self.get_status_display()}"

    @property
    def is_open(self) -> bool:
        return self.status in (VisitStatus.REQUESTED, VisitStatus.SCHEDULED)

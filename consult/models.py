from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from consult.expressions import SecondsBetween

# Case references are read aloud over the phone and typed by elderly people: no 0/O, 1/I/L.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 8

phone_validator = RegexValidator(
    regex=r"^1[3-9]\d{9}$",
    message=_("Enter an 11-digit mobile phone number starting with 1."),
)


def normalize_phone(raw: str) -> str:
    """Strip spaces, dashes and a +86 / 0086 prefix, so "+86 138-0013-8000" is one number."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


class Kind(models.TextChoices):
    MEDICAL = "medical", _("Medical consultation")
    LEGAL = "legal", _("Labour dispute")


class Role(models.TextChoices):
    RESIDENT = "resident", _("Resident")
    DOCTOR = "doctor", _("Doctor")
    LAWYER = "lawyer", _("Lawyer")
    COORDINATOR = "coordinator", _("Coordinator")


ROLE_KIND = {Role.DOCTOR: Kind.MEDICAL, Role.LAWYER: Kind.LEGAL}


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(
        self, phone: str, password: str | None = None, **extra: Any
    ) -> User:
        user = self.model(phone=normalize_phone(phone), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, phone: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("role", Role.COORDINATOR)
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self.create_user(phone, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    phone = models.CharField(
        _("mobile phone"), max_length=11, unique=True, validators=[phone_validator]
    )
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.RESIDENT)
    email = models.EmailField(_("e-mail"), blank=True)
    # Notices and generated summaries are written in this language.
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    # Elderly mode: larger type and stronger contrast on every page (consult/display.py).
    large_text = models.BooleanField(_("larger text and high contrast"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff"), default=False)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    # A coordinator works for one organisation (a hospital, the union): they see the cases of its
    # domains only. The few who run the whole platform are marked platform-wide.
    domains = models.JSONField(
        _("domains coordinated"), default=list, blank=True,
        help_text=_("For a coordinator: the kinds of case their organisation handles, e.g. [\"medical\"]."),
    )
    platform_wide = models.BooleanField(
        _("platform-wide coordinator"), default=False,
        help_text=_("Sees the cases of every domain. Only for the few who run the whole platform."),
    )
    # Part of the sessions' auth hash: raised to end every session of the account (accounts/access.py).
    session_epoch = models.PositiveIntegerField(_("session epoch"), default=0, editable=False)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"

    def clean(self) -> None:
        super().clean()
        self.phone = normalize_phone(self.phone)
        if self.role == Role.COORDINATOR:
            self.is_staff = True
        if not isinstance(self.domains, list) or any(d not in Kind.values for d in self.domains):
            kinds = ", ".join(Kind.values)
            raise ValidationError({"domains": _("List kinds of case from: %(kinds)s") % {"kinds": kinds}})

    def get_full_name(self) -> str:
        return self.name

    def get_session_auth_hash(self) -> str:
        return self._session_auth_hash(None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_auth_hash(secret)

    def _session_auth_hash(self, secret: str | bytes | None) -> str:
        # Django's own hash while the epoch is 0, so the sessions made before it existed stay valid.
        value = f"{self.password}:{self.session_epoch}" if self.session_epoch else self.password
        salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
        return salted_hmac(salt, value, secret=secret, algorithm="sha256").hexdigest()

    def get_short_name(self) -> str:
        return self.name

    @property
    def is_resident(self) -> bool:
        return self.role == Role.RESIDENT

    @property
    def is_professional(self) -> bool:
        return self.role in (Role.DOCTOR, Role.LAWYER)

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def coordinated_kinds(self) -> frozenset[str]:
        """The kinds of case this coordinator sees (none for anyone else). Superusers administer
        everything anyway, so they are platform-wide."""
        if self.is_superuser or (self.is_coordinator and self.platform_wide):
            return frozenset(Kind.values)
        if not self.is_coordinator:
            return frozenset()
        return frozenset(d for d in self.domains if d in Kind.values)

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        # Coordinators run the platform: they administer every model in the admin (but a domain's
        # own records only for the domains they coordinate).
        if self.is_active and self.is_coordinator:
            return perm.split(".", 1)[0] not in Kind.values or perm.split(".", 1)[0] in self.coordinated_kinds
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label: str) -> bool:
        if self.is_active and self.is_coordinator:
            # A domain's own records (intakes, notes, mediations) only to its coordinators.
            return app_label not in Kind.values or app_label in self.coordinated_kinds
        return super().has_module_perms(app_label)


class BilingualName(models.Model):
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


class Skill(BilingualName):
    """A medical specialty or a legal practice area: one service of the public catalogue."""

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    materials_zh = models.TextField(_("materials to prepare (Chinese)"), blank=True, help_text=_("One per line."))
    materials_en = models.TextField(_("materials to prepare (English)"), blank=True, help_text=_("One per line."))
    office_zh = models.CharField(_("office in charge (Chinese)"), max_length=200)
    office_en = models.CharField(_("office in charge (English)"), max_length=200)
    office_phone = models.CharField(_("office phone"), max_length=30)
    required_documents = models.JSONField(
        _("documents required at intake"),
        default=list,
        blank=True,
        help_text=_("Document kinds the intake asks for, e.g. [\"exam_report\", \"imaging\"]."),
    )
    response_hours = models.PositiveIntegerField(
        _("promised first response (hours)"), default=24
    )
    is_active = models.BooleanField(_("offered"), default=True)
    position = models.PositiveSmallIntegerField(_("position in catalogue"), default=0)

    class Meta:
        ordering = ["kind", "position", "code"]
        verbose_name = _("service")
        verbose_name_plural = _("services")

    def clean(self) -> None:
        value = self.required_documents
        if not isinstance(value, list) or any(v not in DocumentKind.values for v in value):
            kinds = ", ".join(DocumentKind.values)
            raise ValidationError({"required_documents": _("List document kinds from: %(kinds)s") % {"kinds": kinds}})

    @property
    def materials(self) -> list[str]:
        text = self.materials_en if (get_language() or "").startswith("en") else self.materials_zh
        return [line.strip() for line in text.splitlines() if line.strip()]

    @property
    def office(self) -> str:
        return self.office_en if (get_language() or "").startswith("en") else self.office_zh


class Professional(models.Model):
    """A doctor's or lawyer's working profile."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="professional")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    skills = models.ManyToManyField(Skill, related_name="professionals", verbose_name=_("skills"))
    organisation = models.CharField(_("organisation"), max_length=200)
    city = models.CharField(_("city"), max_length=100)
    capacity = models.PositiveSmallIntegerField(_("capacity (open cases at most)"), default=5)
    on_duty = models.BooleanField(_("on duty"), default=False)
    last_assigned_at = models.DateTimeField(_("last assigned"), null=True, blank=True)

    class Meta:
        verbose_name = _("professional")
        verbose_name_plural = _("professionals")

    def __str__(self) -> str:
        return f"{self.user.name} · {self.organisation}"

    def clean(self) -> None:
        expected = ROLE_KIND.get(Role(self.user.role)) if self.user_id else None
        if self.user_id and expected != self.kind:
            raise ValidationError(
                {"kind": _("A doctor handles medical cases and a lawyer handles legal cases.")}
            )


class Status(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    WAITING = "waiting", _("Waiting in line")
    ASSIGNED = "assigned", _("Assigned")
    ACTIVE = "active", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# The only ways a case may move. A reassignment is assigned/active -> assigned.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.SUBMITTED: frozenset({Status.WAITING, Status.ASSIGNED, Status.WITHDRAWN}),
    Status.WAITING: frozenset({Status.ASSIGNED, Status.WITHDRAWN}),
    Status.ASSIGNED: frozenset(
        {Status.ACTIVE, Status.WAITING, Status.ASSIGNED, Status.WITHDRAWN}
    ),
    Status.ACTIVE: frozenset({Status.RESOLVED, Status.ASSIGNED, Status.WITHDRAWN}),
    Status.RESOLVED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
}

# The one way out of "withdrawn": its undo by the resident (Verb.REOPENED, services.case_reopen),
# back to where the case was. No other step may take it: a doctor's accept on a withdrawn case is
# refused as before.
REOPEN_TRANSITIONS = frozenset({Status.WAITING, Status.ASSIGNED, Status.ACTIVE})

# The timestamp each status stamps when a case enters it.
STATUS_TIMESTAMP = {
    Status.SUBMITTED: "submitted_at",
    Status.WAITING: "waiting_at",
    Status.ASSIGNED: "assigned_at",
    Status.ACTIVE: "accepted_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
    Status.WITHDRAWN: "withdrawn_at",
}

OPEN_STATUSES = (Status.SUBMITTED, Status.WAITING, Status.ASSIGNED, Status.ACTIVE)
# Cases that count against a professional's capacity.
LOAD_STATUSES = (Status.ASSIGNED, Status.ACTIVE)


class Priority(models.IntegerChoices):
    NORMAL = 0, _("Normal")
    ELDERLY = 1, _("Elderly")
    URGENT = 2, _("Urgent")


class Case(models.Model):
    reference = models.CharField(
        _("reference"), max_length=REFERENCE_LENGTH, unique=True, default=new_reference, editable=False
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="cases", verbose_name=_("service"))
    resident = models.ForeignKey(User, on_delete=models.PROTECT, related_name="cases", verbose_name=_("resident"))
    assignee = models.ForeignKey(
        Professional,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("assigned to"),
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    description = models.TextField(_("short description"), max_length=2000)
    # The notice whose QR code brought the resident here (village, hospital hall, union office).
    source_place = models.CharField(_("opened from the notice at"), max_length=100, blank=True)
    declined_by = models.ManyToManyField(
        Professional, blank=True, related_name="declined_cases", verbose_name=_("declined by")
    )
    # The consultation this labour dispute came from (an injury at work seen by a doctor). Only the
    # documents the resident chose were copied across: the dispute's lawyer reads nothing else.
    referred_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="referrals",
        verbose_name=_("referred from"),
    )

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    waiting_at = models.DateTimeField(_("waiting since"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    # The last chat sequence number given out; the next message takes last_seq + 1.
    last_seq = models.PositiveIntegerField(_("last message number"), default=0, editable=False)
    # The first time any professional accepted the case: the "first response" of the figures.
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    # Personal details removed (retention period over, or erasure granted: privacy/anonymise.py);
    # the skeleton the figures and the audit trail need stays.
    anonymised_at = models.DateTimeField(_("personal details removed"), null=True, blank=True, editable=False)
    # The waits the figures take medians of, kept by the database itself (stored generated
    # columns, so rows written any way have them): indexed, a median is read at the middle of an
    # index instead of computing and sorting every case's duration on each page.
    first_response_seconds = models.GeneratedField(
        expression=SecondsBetween("submitted_at", "first_response_at"),
        output_field=models.FloatField(),
        db_persist=True,
        verbose_name=_("wait until first response (seconds)"),
    )
    resolution_seconds = models.GeneratedField(
        expression=SecondsBetween("submitted_at", "resolved_at"),
        output_field=models.FloatField(),
        db_persist=True,
        verbose_name=_("wait until resolution (seconds)"),
    )

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-created_at"]
        indexes = [
            # The queue: a case that was declined or timed out keeps its place (submission time).
            models.Index(fields=["status", "skill", "-priority", "submitted_at"], name="case_queue_idx"),
            # "Take the next case": the waiting cases of a kind in claim order, so a claimer reads
            # the line from its head and stops at the first case in its skills that nobody holds,
            # instead of sorting every waiting case on each claim. Partial: only the line itself.
            models.Index(
                fields=["kind", "-priority", "submitted_at", "id"],
                condition=models.Q(status="waiting"),
                name="case_claim_idx",
            ),
            models.Index(fields=["assignee", "status"], name="case_load_idx"),
            # The coordinator's list of open cases, most urgent and longest waiting first: read in
            # order and stopped at the page size instead of sorting every open case.
            models.Index(
                fields=["-priority", "submitted_at", "id"],
                condition=models.Q(status__in=("waiting", "assigned", "active")),
                name="case_open_idx",
            ),
            # The medians of the figures (see figures.medians): the counted cases' waits in order,
            # overall and per service.
            models.Index(
                fields=["first_response_seconds"],
                condition=models.Q(first_response_seconds__isnull=False) & ~models.Q(status="withdrawn"),
                name="case_response_idx",
            ),
            models.Index(
                fields=["skill", "first_response_seconds"],
                condition=models.Q(first_response_seconds__isnull=False) & ~models.Q(status="withdrawn"),
                name="case_skill_response_idx",
            ),
            # Per month, and the report's dates: the counted cases by submission time, with what
            # the monthly figures read (index-only; key columns rather than INCLUDE, which SQLite
            # lacks).
            models.Index(
                fields=["submitted_at", "kind", "first_response_seconds"],
                condition=~models.Q(status="withdrawn"),
                name="case_counted_submitted_idx",
            ),
            # The people served: the residents of the counted cases, read from the index alone.
            models.Index(
                fields=["resident"], condition=~models.Q(status="withdrawn"), name="case_counted_resident_idx"
            ),
            models.Index(
                fields=["resolution_seconds"],
                condition=models.Q(resolution_seconds__isnull=False) & ~models.Q(status="withdrawn"),
                name="case_resolution_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Verb(models.TextChoices):
    SUBMITTED = "submitted", _("submitted the case")
    WAITING = "waiting", _("case is waiting in line")
    ASSIGNED = "assigned", _("case assigned")
    CLAIMED = "claimed", _("took the case from the queue")
    ACCEPTED = "accepted", _("accepted the case")
    DECLINED = "declined", _("declined the case")
    TIMED_OUT = "timed_out", _("did not accept in time")
    REASSIGNED = "reassigned", _("reassigned the case")
    RESOLVED = "resolved", _("resolved the case")
    CLOSED = "closed", _("closed the case")
    WITHDRAWN = "withdrawn", _("withdrew the case")
    REOPENED = "reopened", _("undid the withdrawal: the case is open again")
    DETAILS_EDITED = "details_edited", _("updated the details of the case")
    DOCUMENT_ADDED = "document_added", _("added a document")
    NOTE_SAVED = "note_saved", _("saved the consultation note")
    VISIT_REQUESTED = "visit_requested", _("asked for a home visit")
    VISIT_SCHEDULED = "visit_scheduled", _("scheduled the home visit")
    VISIT_DONE = "visit_done", _("made the home visit")
    VISIT_CANCELLED = "visit_cancelled", _("cancelled the home visit")
    EMPLOYER_CONTACTED = "employer_contacted", _("contacted the employer")
    MEDIATION_HELD = "mediation_held", _("held a mediation session")
    OUTCOME_RECORDED = "outcome_recorded", _("recorded the outcome of the mediation")
    PAYMENT_RECEIVED = "payment_received", _("recorded a payment to the worker")
    DOCUMENT_VIEWED = "document_viewed", _("viewed a document")
    SUMMARY_GENERATED = "summary_generated", _("generated the summary")
    VIEWED = "viewed", _("looked at the case")
    ANONYMISED = "anonymised", _("removed the personal details from the case")
    ERASURE_REQUESTED = "erasure_requested", _("asked for the personal details to be erased")
    ERASURE_APPROVED = "erasure_approved", _("approved the erasure of the personal details")
    ERASURE_REFUSED = "erasure_refused", _("refused the erasure of the personal details")
    REFERRAL_SUGGESTED = "referral_suggested", _("suggested asking the union's lawyers about an injury at work")
    REFERRED_OUT = "referred_out", _("asked the union's lawyers for help: labour dispute")
    REFERRED_IN = "referred_in", _("opened from a consultation")


# A case that changed hands was not resolved at first contact.
HANDOVER_VERBS = (Verb.DECLINED, Verb.REASSIGNED, Verb.TIMED_OUT)


class CaseEvent(models.Model):
    """The case's timeline and audit trail. Rows are only ever added."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    verb = models.CharField(_("what"), max_length=30, choices=Verb.choices)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        indexes = [
            # The figures' "resolved at first contact": the few cases that changed hands.
            models.Index(
                fields=["case"],
                condition=models.Q(verb__in=HANDOVER_VERBS),
                name="caseevent_handover_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.verb}"


class DocumentKind(models.TextChoices):
    EXAM_REPORT = "exam_report", _("Exam report")
    IMAGING = "imaging", _("Imaging (X-ray, CT, MRI, ultrasound)")
    PRESCRIPTION = "prescription", _("Prescription or medicine list")
    ID = "id", _("Identity document")
    LABOUR_CONTRACT = "labour_contract", _("Labour contract")
    PAYSLIP = "payslip", _("Payslip or bank record")
    SICK_LEAVE = "sick_leave", _("Sick-leave note")
    OTHER = "other", _("Other")
    SUMMARY = "summary", _("Generated summary")
    VOICE = "voice", _("Voice message")


class Document(models.Model):
    """A file on a case. The bytes live in private storage under a key the server made up."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="documents")
    uploader = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("uploaded by")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=DocumentKind.choices, default=DocumentKind.OTHER)
    storage_key = models.CharField(_("storage key"), max_length=200, unique=True, editable=False)
    original_name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    # Of the bytes as they arrived (a photo is stored re-encoded): the same file sent again is known
    # by it before anything is decoded.
    received_sha256 = models.CharField(_("SHA-256 as received"), max_length=64, blank=True, default="", editable=False)
    # Generated summaries carry this code in their QR: the public page that proves them genuine.
    verification_code = models.CharField(
        _("verification code"), max_length=32, unique=True, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("added"), default=timezone.now)
    # Of a voice message, as decoded when it was checked (a browser's recording often has none in
    # its header).
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "sha256"], name="document_once_per_case"),
        ]
        indexes = [models.Index(fields=["case", "received_sha256"], name="document_received_sha256")]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def is_audio(self) -> bool:
        return self.content_type.startswith("audio/")


MESSAGE_MAX_LENGTH = 4000


class MessageKind(models.TextChoices):
    TEXT = "text", _("Message")
    SYSTEM = "system", _("Status change")


class Message(models.Model):
    """A chat line on a case, numbered per case so a client can resume from the last it saw."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(_("number"))
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT)
    sender = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("sender")
    )
    body = models.TextField(_("text"), max_length=MESSAGE_MAX_LENGTH, blank=True)
    document = models.ForeignKey(
        Document, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("document")
    )
    # Chosen by the sending client; a retried send with the same id is stored once.
    client_id = models.CharField(_("client id"), max_length=64, null=True, blank=True)
    # For status changes: the timeline verb and its detail, shown in each reader's language.
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["case", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["case", "seq"], name="message_seq_once_per_case"),
            models.UniqueConstraint(
                fields=["case", "sender", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="message_client_id_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}#{self.seq}"


class Rating(models.Model):
    """The resident's rating of a closed case: asked once, skippable (a skipped one has no score)."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField(
        _("score"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(_("comment"), max_length=1000, blank=True)
    created_at = models.DateTimeField(_("rated at"), default=timezone.now)

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")

    def __str__(self) -> str:
        return f"{self.case_id}: {self.score or '-'}"


class CaseTally(models.Model):
    """The figures' counts of the counted (not withdrawn) cases of one service submitted on one
    local day. Rewritten from that day's cases by the services, in the transaction that changes
    what they count (consult/tally.py): the figures add up a few rows per service and day instead
    of rescanning every case."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    day = models.DateField()
    total = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    # Resolved after a handover: not at first contact.
    handed_over = models.PositiveIntegerField(default=0)
    responded = models.PositiveIntegerField(default=0)
    resolution_timed = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    satisfied = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["skill", "kind", "day"], name="casetally_bucket_unique")]

    def __str__(self) -> str:
        return f"{self.skill_id} {self.day}: {self.total}"


class Poster(models.Model):
    """A printed notice: one service, one place. Its QR code opens the service's intake and
    tells us where the resident saw it."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="posters", verbose_name=_("service"))
    place = models.CharField(_("place"), max_length=100)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("made at"), default=timezone.now)

    class Meta:
        verbose_name = _("poster")
        verbose_name_plural = _("posters")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.skill.code} @ {self.place}"


class IdempotencyKey(models.Model):
    """The first answer to an API call made with an Idempotency-Key, replayed for its retries."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    endpoint = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()
    # As the client received it: dates and decimals already turned into strings.
    body = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"

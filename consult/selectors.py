"""Reads: who may see what, queues, places in line and wait estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Exists, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult.models import (
    LOAD_STATUSES,
    OPEN_STATUSES,
    Case,
    CaseEvent,
    Kind,
    Message,
    Professional,
    Rating,
    Skill,
    Status,
    User,
)


def visible_cases(user: User | AnonymousUser) -> QuerySet[Case]:
    """The one rule of who sees a case: its resident, its assignee, and the coordinators of its
    domain (a hospital's coordinator sees no labour dispute, the union's no medical record; the
    platform-wide ones see both)."""
    cases = Case.objects.select_related("skill", "resident", "assignee__user")
    if not user.is_authenticated or not user.is_active:
        return cases.none()
    assert isinstance(user, User)
    if user.is_coordinator:
        return cases.filter(kind__in=sorted(user.coordinated_kinds))
    if user.is_professional:
        return cases.filter(assignee__user=user)
    return cases.filter(resident=user)


# What a case room (realtime/consumers.py) reads of its case between frames, in the event loop
# and in the chat services: the status, the skill's queue, who is on it and whether they are
# active (is_participant, offline_candidates). Every other field is left unread: the handshake
# read with the whole case, its skill and both people was a quarter of a connect's CPU, most of
# it the ORM building 78 columns.
ROOM_FIELDS = (
    "reference", "status", "skill_id", "resident__is_active", "assignee__user__is_active",
)


def case_get_for_user(*, user: User | AnonymousUser, reference: str, room: bool = False) -> Case:
    """The case `reference` if `user` may see it. Missing and forbidden are the same 404.
    `room`: only ROOM_FIELDS are read (a socket's case; same rule, same 404)."""
    cases = visible_cases(user)
    if room:
        cases = cases.select_related(None).select_related("resident", "assignee__user").only(*ROOM_FIELDS)
    try:
        return cases.get(reference=reference.upper())
    except Case.DoesNotExist:
        raise Http404("No such case") from None


def case_actions(*, case: Case, user: User) -> frozenset[str]:
    """What `user` may do to `case` now; pages show these buttons, services enforce the same."""
    actions: set[str] = set()
    is_assignee = case.assignee is not None and case.assignee.user_id == user.pk
    if is_assignee and case.status == Status.ASSIGNED:
        actions |= {"accept", "decline"}
    if is_assignee and case.status == Status.ACTIVE:
        actions.add("resolve")
    if (is_assignee or user.is_coordinator) and case.status == Status.RESOLVED:
        actions.add("close")
    if case.resident_id == user.pk and case.status in OPEN_STATUSES:
        actions.add("withdraw")
    if user.is_coordinator and case.status in (Status.WAITING, Status.ASSIGNED, Status.ACTIVE):
        actions.add("reassign")
    if (is_assignee or user.is_coordinator or case.resident_id == user.pk) and _summary_ready(case):
        actions.add("summary")
    return frozenset(actions)


def _summary_ready(case: Case) -> bool:
    from consult.domains import domain_of

    if case.status not in (Status.ACTIVE, Status.RESOLVED, Status.CLOSED):
        return False
    if case.anonymised_at is not None:
        return False  # nothing personal left to summarise (privacy/anonymise.py)
    domain = domain_of(case)
    return domain is not None and domain.resolve_blocker(case) is None


def case_timeline(case: Case) -> QuerySet[CaseEvent]:
    return case.events.select_related("actor")


# The case page shows this many of the newest chat messages; earlier ones load on demand.
CHAT_PAGE = 50


@dataclass(frozen=True)
class ChatPage:
    messages: list[Message]  # oldest first, as the chat shows them
    has_earlier: bool

    @property
    def first_seq(self) -> int | None:
        return self.messages[0].seq if self.messages else None


def chat_page(*, case: Case, before: int | None = None, size: int = CHAT_PAGE) -> ChatPage:
    """The newest `size` messages of `case` (of those numbered below `before`, when given), and
    whether earlier ones exist. The caller has checked access (`case_get_for_user`)."""
    messages = Message.objects.filter(case=case).select_related("sender", "document").order_by("-seq")
    if before is not None:
        messages = messages.filter(seq__lt=before)
    newest = list(messages[: size + 1])
    return ChatPage(messages=newest[:size][::-1], has_earlier=len(newest) > size)


def cases_of_resident(user: User) -> list[Case]:
    cases = list(visible_cases(user).filter(resident=user).order_by("-created_at"))
    paces: dict[int, timedelta] = {}
    for case in cases:
        place = queue_place(case)
        case.place_in_line = place  # type: ignore[attr-defined]
        wait = None
        if place is not None:
            if case.skill_id not in paces:
                paces[case.skill_id] = skill_pace(case.skill)
            wait = paces[case.skill_id] * place
        case.estimated_wait = wait  # type: ignore[attr-defined]
    return cases


def _waiting(skill_id: int) -> QuerySet[Case]:
    return Case.objects.filter(status=Status.WAITING, skill_id=skill_id)


def queue_place(case: Case) -> int | None:
    """1 for the next case to be taken in its skill's queue; None when not waiting."""
    if case.status != Status.WAITING or case.submitted_at is None:
        return None
    ahead = (
        _waiting(case.skill_id)
        .filter(
            Q(priority__gt=case.priority)
            | Q(priority=case.priority, submitted_at__lt=case.submitted_at)
            | Q(priority=case.priority, submitted_at=case.submitted_at, pk__lt=case.pk)
        )
        .count()
    )
    return ahead + 1


def recent_first_response(skill: Skill) -> timedelta:
    """How long the skill's cases wait for a first answer: the middle (median) of its recent
    first responses, so one quick or one slow case does not swing it, blended with the promised
    time until WAIT_ESTIMATE_TRUST responses are known, so the first sample moves it by a part.
    The promised time alone while there is no history."""
    promised = timedelta(hours=skill.response_hours)
    recent = [
        responded - submitted
        for submitted, responded in Case.objects.filter(
            skill=skill, first_response_at__isnull=False, submitted_at__isnull=False
        )
        .order_by("-first_response_at")
        .values_list("submitted_at", "first_response_at")[: settings.WAIT_ESTIMATE_SAMPLE]
        if submitted is not None and responded is not None
    ]
    if not recent:
        return promised
    recent.sort()
    half = len(recent) // 2
    middle = recent[half] if len(recent) % 2 else (recent[half - 1] + recent[half]) / 2
    trust = min(len(recent) / max(settings.WAIT_ESTIMATE_TRUST, 1), 1.0)
    return middle * trust + promised * (1 - trust)


def skill_pace(skill: Skill) -> timedelta:
    """How long each place in the skill's line takes: the recent response time, shared among the
    professionals on duty."""
    on_duty = Professional.objects.filter(skills=skill, on_duty=True, user__is_active=True).count()
    return recent_first_response(skill) / max(on_duty, 1)


def estimated_wait(case: Case) -> timedelta | None:
    """Place in line times the skill's pace."""
    place = queue_place(case)
    if place is None:
        return None
    return skill_pace(case.skill) * place


@dataclass(frozen=True)
class Line:
    """A skill's whole line at one moment: the place of each waiting case, and how long a place
    takes. The sockets of waiting residents share one after a queue change (realtime/lines.py)
    instead of each counting the cases ahead of its own."""

    places: dict[int, int]
    pace: timedelta

    def place_of(self, case_id: int) -> int | None:
        return self.places.get(case_id)

    def wait_of(self, case_id: int) -> timedelta | None:
        place = self.places.get(case_id)
        return None if place is None else self.pace * place


def queue_line(*, skill_id: int) -> Line:
    """The line of `skill_id` in `queue_place`'s order, in one read of the queue index."""
    waiting = (
        _waiting(skill_id)
        .filter(submitted_at__isnull=False)
        .order_by("-priority", "submitted_at", "pk")
        .values_list("pk", flat=True)
    )
    places = {pk: place for place, pk in enumerate(waiting, start=1)}
    if not places:
        return Line(places={}, pace=timedelta(0))
    return Line(places=places, pace=skill_pace(Skill.objects.get(pk=skill_id)))


@dataclass(frozen=True)
class QueueEntry:
    """A waiting case as a professional sees it before taking it: no identity, no documents."""

    skill: Skill
    priority: int
    priority_label: str
    waited: timedelta
    description: str


def queue_for_professional(professional: Professional) -> list[QueueEntry]:
    now = timezone.now()
    waiting = (
        Case.objects.filter(
            status=Status.WAITING, kind=professional.kind, skill__in=professional.skills.values("pk")
        )
        .exclude(declined_by=professional)
        .select_related("skill")
        .order_by("-priority", "submitted_at", "pk")
    )
    return [
        QueueEntry(
            skill=case.skill,
            priority=case.priority,
            priority_label=case.get_priority_display(),
            waited=now - (case.submitted_at or case.created_at),
            description=case.description,
        )
        for case in waiting
    ]


def open_cases_of_professional(professional: Professional) -> QuerySet[Case]:
    return (
        Case.objects.filter(assignee=professional, status__in=(*LOAD_STATUSES, Status.RESOLVED))
        .select_related("skill", "resident")
        .order_by("-priority", "assigned_at")
    )


def professional_load(professional: Professional) -> int:
    return Case.objects.filter(assignee=professional, status__in=LOAD_STATUSES).count()


@dataclass(frozen=True)
class SkillRow:
    skill: Skill
    waiting: int
    oldest_waiting_at: datetime | None
    professionals: Sequence[Professional]


def _open_load() -> Subquery:
    """A professional's open cases (the load against capacity), counted through the (assignee,
    status) index for each professional: never a join over all their past cases."""
    return Subquery(
        Case.objects.filter(assignee=OuterRef("pk"), status__in=LOAD_STATUSES)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )


def coordinator_dashboard(coordinator: User) -> list[SkillRow]:
    """Per service of the coordinator's domains: how many wait, since when, and who is on duty with
    what load."""
    kinds = sorted(coordinator.coordinated_kinds)
    # Only the waiting cases are read (the queue index starts with the status): the count stays
    # the size of the queues, not of the history.
    waiting = {
        row["skill"]: row
        for row in Case.objects.filter(status=Status.WAITING, kind__in=kinds)
        .order_by()
        .values("skill")
        .annotate(n=Count("pk"), oldest=Min("submitted_at"))
    }
    skills = Skill.objects.filter(kind__in=kinds).prefetch_related(
        Prefetch(
            "professionals",
            queryset=Professional.objects.filter(on_duty=True)
            .select_related("user")
            .annotate(load=Coalesce(_open_load(), 0))
            .order_by("user__name"),
            to_attr="on_duty_professionals",
        )
    )
    return [
        SkillRow(
            skill=skill,
            waiting=waiting.get(skill.pk, {}).get("n", 0),
            oldest_waiting_at=waiting.get(skill.pk, {}).get("oldest"),
            professionals=skill.on_duty_professionals,
        )
        for skill in skills
    ]


def reassign_candidates(case: Case) -> QuerySet[Professional]:
    # Subqueries per professional rather than joins: joining cases and skills multiplied the rows
    # by every case each professional ever had, then counted them distinct.
    return (
        Professional.objects.filter(kind=case.kind, user__is_active=True)
        .exclude(pk=case.assignee_id or 0)
        .select_related("user")
        .annotate(
            load=Coalesce(_open_load(), 0),
            has_skill=Exists(
                Professional.skills.through.objects.filter(professional=OuterRef("pk"), skill=case.skill_id)
            ),
        )
        .order_by("-has_skill", "load", "user__name")
    )


def catalogue(*, query: str = "") -> dict[str, list[Skill]]:
    """The services offered, medical then legal; with a query, those whose name (in either
    language), materials or office mention each of its words."""
    skills = Skill.objects.filter(is_active=True)
    for word in query.split()[:5]:
        skills = skills.filter(
            Q(name_zh__icontains=word)
            | Q(name_en__icontains=word)
            | Q(materials_zh__icontains=word)
            | Q(materials_en__icontains=word)
            | Q(office_zh__icontains=word)
            | Q(office_en__icontains=word)
        )
    return {
        Kind.MEDICAL: [s for s in skills if s.kind == Kind.MEDICAL],
        Kind.LEGAL: [s for s in skills if s.kind == Kind.LEGAL],
    }


def open_cases_for_coordinator(coordinator: User, limit: int = 200) -> QuerySet[Case]:
    """Cases of the coordinator's domains still moving, most urgent and longest waiting first."""
    return (
        Case.objects.filter(
            status__in=(Status.WAITING, Status.ASSIGNED, Status.ACTIVE), kind__in=sorted(coordinator.coordinated_kinds)
        )
        .select_related("skill", "assignee__user")
        .order_by("-priority", "submitted_at", "pk")[:limit]
    )


@dataclass(frozen=True)
class Tracked:
    """What tracking without an account shows: the state of the case, nothing about the person."""

    reference: str
    skill: Skill
    status: str
    status_label: str
    place_in_line: int | None
    estimated_wait: timedelta | None
    next_step: str


def _next_step(case: Case) -> str:
    steps = {
        Status.SUBMITTED: _("We are finding a professional for your case."),
        Status.WAITING: _("Your case is in line. A professional will take it soon."),
        Status.ASSIGNED: _("A professional has been given your case and will answer soon."),
        Status.ACTIVE: _("A professional is working on your case. Log in to read and reply."),
        Status.RESOLVED: _("The answer is ready. Log in to read it."),
        Status.CLOSED: _("The case is closed. Log in to download the summary."),
        Status.WITHDRAWN: _("The case was withdrawn."),
    }
    return str(steps[Status(case.status)])


def case_track(*, reference: str, phone_last4: str) -> Tracked | None:
    """The case whose reference and resident's phone end match, else None (the same None for a
    wrong pair and a missing case)."""
    case = (
        Case.objects.select_related("skill")
        .filter(reference=reference.upper(), resident__phone__endswith=phone_last4)
        .first()
    )
    if case is None or len(phone_last4) != 4:
        return None
    place = queue_place(case)
    return Tracked(
        reference=case.reference,
        skill=case.skill,
        status=case.status,
        status_label=str(case.get_status_display()),
        place_in_line=place,
        estimated_wait=estimated_wait(case) if place else None,
        next_step=_next_step(case),
    )


def cases_by_place() -> list[dict[str, object]]:
    """How many cases each notice brought in."""
    return list(
        Case.objects.exclude(source_place="")
        .values("source_place", "skill__name_zh", "skill__name_en")
        .annotate(n=Count("pk"))
        .order_by("-n")[:100]
    )


def wants_rating(case: Case, user: User) -> bool:
    return (
        case.resident_id == user.pk
        and case.status == Status.CLOSED
        and not Rating.objects.filter(case=case).exists()
    )


# --- the case page's head and chat ----------------------------------------------------------


def promised_by(case: Case) -> datetime | None:
    """When the resident was promised an answer: the service's response time counted from when
    the case was sent (still waiting), given to a professional (assigned), or accepted (the time
    the acceptance notice gives, notices/case_notices.py). None once it is answered or finished."""
    start = {
        Status.SUBMITTED: case.submitted_at,
        Status.WAITING: case.submitted_at,
        Status.ASSIGNED: case.assigned_at,
        Status.ACTIVE: case.accepted_at,
    }.get(Status(case.status))
    if start is None:
        return None
    return start + timedelta(hours=case.skill.response_hours)


def chat_read_seq(*, case: Case, user: User) -> int:
    """How far the other people on `case` have read its chat: `user`'s own messages up to this
    number show as read, on the page as they did live."""
    from realtime.models import ReadMark

    marks = ReadMark.objects.filter(case=case).exclude(user=user).values_list("seq", flat=True)
    return max(marks, default=0)

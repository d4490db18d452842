"""Matching on submit, the queue (place in line, wait estimate), decline, sweep and claim."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from consult import selectors, services
from consult.errors import CaseError
from consult.models import Case, CaseEvent, Priority, Professional, Skill, Status, User, Verb
from notices.kinds import NoticeKind
from notices.models import Notice
from realtime import events

MakeProfessional = Callable[..., Professional]


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """The cast's accounts are not under test here: spare each test the production-strength hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def submit(alice: User) -> Callable[..., Case]:
    def make(skill: Skill, priority: int = Priority.NORMAL, resident: User | None = None) -> Case:
        return services.case_submit(
            resident=resident or alice, skill=skill, description="咳嗽两周，夜里加重。", priority=priority
        )

    return make


@pytest.fixture
def give_load(bob: User) -> Callable[..., None]:
    """Give `professional` `n` open cases of `status` (bob's), so matching sees them as busy."""

    def make(professional: Professional, n: int, status: str = Status.ACTIVE) -> None:
        skill = professional.skills.get()
        for _ in range(n):
            Case.objects.create(
                kind=professional.kind, skill=skill, resident=bob, description="load",
                status=status, assignee=professional,
            )

    return make


def idle_since(professional: Professional, when: datetime | None) -> None:
    Professional.objects.filter(pk=professional.pk).update(last_assigned_at=when)


def age(case: Case, **fields: datetime) -> Case:
    Case.objects.filter(pk=case.pk).update(**fields)
    case.refresh_from_db()
    return case


def reload(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


def ago(**delta: float) -> datetime:
    return timezone.now() - timedelta(**delta)


# --- matching on submit -------------------------------------------------------------------


def test_it_assigns_only_to_a_professional_with_the_skill(
    professional_factory: MakeProfessional, respiratory: Skill, cardiology: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    # Idle, never assigned, first created: would win on every other count.
    cardiologist = professional_factory([cardiology])
    pulmonologist = professional_factory([respiratory])
    give_load(pulmonologist, 2)

    case = submit(respiratory)

    assert (case.status, case.assignee) == (Status.ASSIGNED, pulmonologist)
    row = reload(case)
    assert (row.status, row.assignee) == (Status.ASSIGNED, pulmonologist)
    assert row.assigned_at is not None
    assert row.events.filter(verb=Verb.ASSIGNED).count() == 1
    pulmonologist.refresh_from_db()
    assert pulmonologist.last_assigned_at is not None
    cardiologist.refresh_from_db()
    assert cardiologist.last_assigned_at is None


def test_it_skips_a_professional_who_is_off_duty(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    off = professional_factory([respiratory], on_duty=False)
    on = professional_factory([respiratory])
    give_load(on, 2)

    case = submit(respiratory)

    assert reload(case).assignee == on
    assert off.cases.count() == 0


def test_it_skips_a_professional_at_capacity(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    full = professional_factory([respiratory], capacity=1)
    give_load(full, 1, status=Status.ASSIGNED)
    busier = professional_factory([respiratory], capacity=5)
    give_load(busier, 3)

    case = submit(respiratory)

    assert reload(case).assignee == busier


def test_it_counts_only_assigned_and_active_cases_against_capacity(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    professional = professional_factory([respiratory], capacity=1)
    for status in (Status.RESOLVED, Status.CLOSED, Status.WITHDRAWN):
        give_load(professional, 1, status=status)

    case = submit(respiratory)

    assert reload(case).assignee == professional


def test_it_gives_the_case_to_the_least_loaded(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    # The least loaded was assigned most recently and created last: only the load can make it win.
    busy = professional_factory([respiratory])
    give_load(busy, 3)
    idle_since(busy, None)
    medium = professional_factory([respiratory])
    give_load(medium, 2)
    idle_since(medium, ago(days=3))
    least = professional_factory([respiratory])
    give_load(least, 1)
    idle_since(least, ago(minutes=1))

    case = submit(respiratory)

    assert reload(case).assignee == least


def test_it_breaks_a_tie_for_the_one_idle_longest(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    recent = professional_factory([respiratory])
    idle_since(recent, ago(minutes=10))
    earlier = professional_factory([respiratory])
    idle_since(earlier, ago(hours=1))
    longest = professional_factory([respiratory])
    idle_since(longest, ago(hours=5))

    case = submit(respiratory)

    assert reload(case).assignee == longest


def test_it_breaks_a_tie_for_one_never_assigned_before_anyone_assigned_long_ago(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    veteran = professional_factory([respiratory])
    idle_since(veteran, ago(days=30))
    newcomer = professional_factory([respiratory])

    case = submit(respiratory)

    assert reload(case).assignee == newcomer


# --- no one eligible: the queue -----------------------------------------------------------


def test_it_puts_the_case_in_line_when_no_one_is_eligible(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    professional_factory([respiratory], on_duty=False)
    full = professional_factory([respiratory], capacity=1)
    give_load(full, 1)

    case = submit(respiratory)

    row = reload(case)
    assert (row.status, row.assignee) == (Status.WAITING, None)
    assert row.waiting_at is not None
    assert list(row.events.values_list("verb", flat=True)) == [Verb.SUBMITTED, Verb.WAITING]
    assert selectors.queue_place(row) == 1


def test_it_tells_each_waiting_case_its_place_in_line_priority_first(
    respiratory: Skill, cardiology: Skill, submit: Callable[..., Case], bob: User
) -> None:
    first = submit(respiratory)
    second = submit(respiratory, resident=bob)
    elsewhere = submit(cardiology)
    urgent = submit(respiratory, priority=Priority.URGENT)
    elderly = submit(respiratory, priority=Priority.ELDERLY)

    places = {c.pk: selectors.queue_place(reload(c)) for c in (first, second, elsewhere, urgent, elderly)}

    assert places == {urgent.pk: 1, elderly.pk: 2, first.pk: 3, second.pk: 4, elsewhere.pk: 1}


def test_it_gives_no_place_in_line_to_a_case_that_is_not_waiting(case: Case) -> None:
    assert case.status == Status.ASSIGNED
    assert selectors.queue_place(case) is None
    assert selectors.estimated_wait(case) is None


def test_it_estimates_the_wait_from_the_promised_response_time_without_history(
    skill_factory: Callable[..., Skill], submit: Callable[..., Case]
) -> None:
    skill = skill_factory(response_hours=12)
    first = submit(skill)
    second = submit(skill)

    assert selectors.estimated_wait(reload(first)) == timedelta(hours=12)
    assert selectors.estimated_wait(reload(second)) == timedelta(hours=24)


def test_it_shares_the_estimate_among_the_professionals_on_duty(
    skill_factory: Callable[..., Skill], professional_factory: MakeProfessional, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    skill = skill_factory(response_hours=12)
    for _ in range(2):
        full = professional_factory([skill], capacity=1)
        give_load(full, 1)
    professional_factory([skill], on_duty=False)
    submit(skill)
    second = submit(skill)

    # Second in line, two on duty (both busy): 12 h x 2 / 2. The one off duty does not count.
    assert reload(second).status == Status.WAITING
    assert selectors.estimated_wait(reload(second)) == timedelta(hours=12)


def history(skill: Skill, resident: User, *hours: tuple[float, float]) -> None:
    """Closed cases of `skill`, each (submitted, first response) that many hours ago."""
    now = timezone.now()
    for submitted_h, responded_h in hours:
        Case.objects.create(
            kind=skill.kind, skill=skill, resident=resident, description="done", status=Status.CLOSED,
            submitted_at=now - timedelta(hours=submitted_h), first_response_at=now - timedelta(hours=responded_h),
        )


def test_it_estimates_the_wait_from_the_recent_first_responses(
    skill_factory: Callable[..., Skill], submit: Callable[..., Case], alice: User, settings: Any
) -> None:
    settings.WAIT_ESTIMATE_SAMPLE = 2
    settings.WAIT_ESTIMATE_TRUST = 2
    skill = skill_factory(response_hours=48)
    # The two most recent took 2 h and 4 h; an older one 100 h.
    history(skill, alice, (300, 200), (10, 8), (5, 1))
    first = submit(skill)
    second = submit(skill)

    assert selectors.estimated_wait(reload(first)) == timedelta(hours=3)
    assert selectors.estimated_wait(reload(second)) == timedelta(hours=6)


def test_it_moves_the_promised_estimate_by_a_part_on_the_first_quick_answer(
    skill_factory: Callable[..., Skill], submit: Callable[..., Case], alice: User, settings: Any
) -> None:
    settings.WAIT_ESTIMATE_TRUST = 5
    skill = skill_factory(response_hours=48)
    # One case answered in a minute: the estimate said "about 2 days", then "about 1 minute".
    history(skill, alice, (1 / 60, 0))
    first = submit(skill)

    # A fifth of the way from the promise (48 h) to that minute.
    assert selectors.estimated_wait(reload(first)) == timedelta(hours=48) * 0.8 + timedelta(minutes=1) * 0.2


def test_it_is_not_swung_by_one_slow_case_among_quick_ones(
    skill_factory: Callable[..., Skill], submit: Callable[..., Case], alice: User, settings: Any
) -> None:
    settings.WAIT_ESTIMATE_TRUST = 5
    skill = skill_factory(response_hours=48)
    # Six answered in 2 hours, and the latest waited a week (someone on leave).
    history(skill, alice, *[(10 + n, 8 + n) for n in range(6)], (170, 2))
    first = submit(skill)

    assert selectors.estimated_wait(reload(first)) == timedelta(hours=2)


# --- free slots ---------------------------------------------------------------------------


def test_it_gives_the_line_to_one_coming_on_duty_in_line_order_up_to_capacity(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    doctor = professional_factory([respiratory], capacity=2, on_duty=False)
    normal = submit(respiratory)
    urgent = submit(respiratory, priority=Priority.URGENT)
    last = submit(respiratory)
    assert {reload(c).status for c in (normal, urgent, last)} == {Status.WAITING}

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "publish_all", lambda payloads: sent.extend(p for _, p in payloads))
    with django_capture_on_commit_callbacks(execute=True):
        services.professional_set_on_duty(professional=doctor, on_duty=True)

    assert [(reload(c).status, reload(c).assignee) for c in (urgent, normal, last)] == [
        (Status.ASSIGNED, doctor), (Status.ASSIGNED, doctor), (Status.WAITING, None),
    ]
    assert reload(urgent).events.get(verb=Verb.ASSIGNED).detail["professional"] == doctor.user.name
    # The doctor hears of each, and each room hears its new status.
    told = Notice.objects.filter(user=doctor.user, kind=NoticeKind.CASE_ASSIGNED).values_list("case", flat=True)
    assert set(told) == {urgent.pk, normal.pk}
    assert {e["reference"] for e in sent if e["type"] == "case.status"} == {urgent.reference, normal.reference}


def test_it_gives_nothing_to_one_going_off_duty(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    doctor = professional_factory([respiratory], on_duty=False)
    case = submit(respiratory)

    services.professional_set_on_duty(professional=doctor, on_duty=False)

    assert reload(case).status == Status.WAITING


def test_it_gives_the_next_waiting_case_to_one_whose_case_is_handed_over(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case], coordinator: User
) -> None:
    doctor = professional_factory([respiratory], capacity=1)
    mine = submit(respiratory)
    services.case_accept(case=mine, professional=doctor)
    waiting = submit(respiratory)
    colleague = professional_factory([respiratory], capacity=1, on_duty=False)
    assert reload(waiting).status == Status.WAITING

    services.case_reassign(case=reload(mine), coordinator=coordinator, professional=colleague)

    assert (reload(waiting).status, reload(waiting).assignee) == (Status.ASSIGNED, doctor)


def test_it_gives_the_next_waiting_case_when_the_resident_withdraws(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case], alice: User
) -> None:
    doctor = professional_factory([respiratory], capacity=1)
    mine = submit(respiratory)
    waiting = submit(respiratory)

    services.case_withdraw(case=mine, resident=alice)

    assert (reload(waiting).status, reload(waiting).assignee) == (Status.ASSIGNED, doctor)


def test_it_gives_a_decliner_the_next_case_but_never_the_one_declined(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    doctor = professional_factory([respiratory], capacity=1)
    declined = submit(respiratory)
    waiting = submit(respiratory)

    services.case_decline(case=declined, professional=doctor, reason="不熟悉")

    assert (reload(waiting).status, reload(waiting).assignee) == (Status.ASSIGNED, doctor)
    assert (reload(declined).status, reload(declined).assignee) == (Status.WAITING, None)


def test_it_gives_nothing_more_to_one_who_let_a_case_time_out(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    away = professional_factory([respiratory], capacity=1)
    stale = age(submit(respiratory), assigned_at=ago(hours=2))
    waiting = submit(respiratory)

    assert services.case_sweep_unaccepted(timeout=timedelta(minutes=30)) == 1

    assert reload(stale).status == reload(waiting).status == Status.WAITING
    assert not Case.objects.filter(assignee=away).exists()


def test_it_fills_a_slot_no_service_saw_free_from_the_minute_job(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    doctor = professional_factory([respiratory], capacity=1)
    submit(respiratory)
    first, second = submit(respiratory), submit(respiratory)
    # The capacity raised in the admin: no service ran.
    Professional.objects.filter(pk=doctor.pk).update(capacity=2)

    assert services.cases_fill_free_slots() == 1
    assert services.cases_fill_free_slots() == 0

    assert [(reload(c).status, reload(c).assignee) for c in (first, second)] == [
        (Status.ASSIGNED, doctor), (Status.WAITING, None),
    ]


# --- decline ------------------------------------------------------------------------------


def test_it_matches_a_declined_case_again_to_someone_else(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    first = professional_factory([respiratory])
    second = professional_factory([respiratory])
    case = submit(respiratory)
    assert case.assignee == first

    services.case_decline(case=case, professional=first, reason="出差")

    row = reload(case)
    assert (row.status, row.assignee) == (Status.ASSIGNED, second)
    assert list(row.declined_by.all()) == [first]
    declined = row.events.get(verb=Verb.DECLINED)
    assert (declined.actor, declined.detail["reason"]) == (first.user, "出差")


def test_it_never_gives_a_declined_case_back_to_the_decliner_even_when_no_one_else_is_eligible(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    only = professional_factory([respiratory])
    case = submit(respiratory)
    assert case.assignee == only

    services.case_decline(case=case, professional=only)

    row = reload(case)
    assert (row.status, row.assignee) == (Status.WAITING, None)
    assert selectors.queue_place(row) == 1
    assert selectors.queue_for_professional(only) == []
    assert services.case_claim_next(professional=only) is None
    assert reload(case).status == Status.WAITING


def test_it_keeps_every_decliner_out_as_the_case_moves_on(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    first = professional_factory([respiratory])
    second = professional_factory([respiratory])
    case = submit(respiratory)
    services.case_decline(case=case, professional=first)
    assert reload(case).assignee == second

    services.case_decline(case=case, professional=second)

    # The first decliner is free and eligible on every other count: the case still waits.
    row = reload(case)
    assert (row.status, row.assignee) == (Status.WAITING, None)


def test_it_lets_another_professional_claim_a_case_its_only_candidate_declined(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    only = professional_factory([respiratory])
    case = submit(respiratory)
    services.case_decline(case=case, professional=only)
    later = professional_factory([respiratory])

    claimed = services.case_claim_next(professional=later)

    assert claimed is not None and claimed.pk == case.pk
    assert reload(case).assignee == later


# --- sweep --------------------------------------------------------------------------------


def test_it_sweeps_a_case_not_accepted_in_time_to_someone_else(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    slow = professional_factory([respiratory])
    other = professional_factory([respiratory])
    stale = age(submit(respiratory), assigned_at=ago(minutes=31))
    assert stale.assignee == slow

    swept = services.case_sweep_unaccepted(timeout=timedelta(minutes=30))

    assert swept == 1
    row = reload(stale)
    assert (row.status, row.assignee) == (Status.ASSIGNED, other)
    assert list(row.declined_by.all()) == [slow]
    timed_out = row.events.get(verb=Verb.TIMED_OUT)
    assert (timed_out.actor, timed_out.detail["professional"]) == (None, slow.user.name)


def test_it_sweeps_a_case_into_the_queue_when_the_timed_out_professional_is_the_only_one(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    only = professional_factory([respiratory])
    stale = age(submit(respiratory), assigned_at=ago(hours=2))

    assert services.case_sweep_unaccepted(timeout=timedelta(minutes=30)) == 1

    row = reload(stale)
    assert (row.status, row.assignee) == (Status.WAITING, None)
    assert selectors.queue_for_professional(only) == []


def test_it_leaves_fresh_and_accepted_cases_alone_when_sweeping(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    doctor = professional_factory([respiratory])
    professional_factory([respiratory])
    fresh = age(submit(respiratory), assigned_at=ago(minutes=29))
    accepted = submit(respiratory)
    assert accepted.assignee is not None
    services.case_accept(case=accepted, professional=accepted.assignee)
    accepted = age(accepted, assigned_at=ago(hours=5))
    before = {c.pk: Case.objects.filter(pk=c.pk).values().get() for c in (fresh, accepted)}

    assert services.case_sweep_unaccepted(timeout=timedelta(minutes=30)) == 0

    assert {c.pk: Case.objects.filter(pk=c.pk).values().get() for c in (fresh, accepted)} == before
    assert not CaseEvent.objects.filter(verb=Verb.TIMED_OUT).exists()
    assert doctor.declined_cases.count() == 0


def test_it_sweeps_through_the_management_command_with_its_minutes(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    slow = professional_factory([respiratory])
    other = professional_factory([respiratory])
    stale = age(submit(respiratory), assigned_at=ago(minutes=11))
    fresh = age(submit(respiratory), assigned_at=ago(minutes=5))
    assert (stale.assignee, fresh.assignee) == (slow, other)
    out = StringIO()

    call_command("sweep_queues", "--minutes", "10", stdout=out)

    # The command also purges dead presence rows and says how many (its second line).
    assert out.getvalue().splitlines()[0] == "1 case(s) put back to matching"
    assert reload(stale).assignee == other
    assert reload(fresh).assignee == other
    assert reload(fresh).assigned_at == fresh.assigned_at


# --- claim the next waiting case ----------------------------------------------------------


@pytest.fixture
def claimer(professional_factory: MakeProfessional, respiratory: Skill) -> Professional:
    """A respiratory doctor, off duty while the queue fills up: call `on_duty` before claiming."""
    return professional_factory([respiratory], on_duty=False)


def on_duty(professional: Professional) -> Professional:
    """On duty by the flag alone: going on duty through the service would hand them the line
    (test_it_gives_the_line_to_one_coming_on_duty), and the claim is what is under test here."""
    Professional.objects.filter(pk=professional.pk).update(on_duty=True)
    professional.refresh_from_db()
    return professional


def claim_all(professional: Professional) -> list[int]:
    claimed: list[int] = []
    while (case := services.case_claim_next(professional=professional)) is not None:
        claimed.append(case.pk)
    return claimed


def test_it_claims_the_highest_priority_first(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    normal = submit(respiratory)
    elderly = submit(respiratory, priority=Priority.ELDERLY)
    urgent = submit(respiratory, priority=Priority.URGENT)

    assert claim_all(on_duty(claimer)) == [urgent.pk, elderly.pk, normal.pk]


def test_it_claims_the_case_waiting_longest_among_equal_priorities(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    # The line is by submission: the first created was submitted last here.
    newest = age(submit(respiratory), submitted_at=ago(minutes=1))
    oldest = age(submit(respiratory), submitted_at=ago(hours=3))
    middle = age(submit(respiratory), submitted_at=ago(hours=1))

    assert claim_all(on_duty(claimer)) == [oldest.pk, middle.pk, newest.pk]


def test_it_keeps_a_requeued_case_in_its_place_in_line(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    # Declined an hour after it was submitted, it went back to waiting just now: it was still
    # submitted first, so it is still first in line.
    requeued = age(submit(respiratory), submitted_at=ago(hours=3), waiting_at=ago(minutes=1))
    later = age(submit(respiratory), submitted_at=ago(hours=2), waiting_at=ago(hours=2))

    assert selectors.queue_place(requeued) == 1
    assert selectors.queue_place(later) == 2
    assert claim_all(on_duty(claimer)) == [requeued.pk, later.pk]


def test_it_claims_in_line_order_with_the_claim_statement_prepared(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepared once per connection (persistent connections), PostgreSQL plans the first claims and
    # then reuses a generic plan: more claims than that, and still the line's order.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    Professional.objects.filter(pk=claimer.pk).update(capacity=20)
    line = [age(submit(respiratory, priority=n % 3), submitted_at=ago(minutes=100 - n)) for n in range(9)]
    expected = sorted(line, key=lambda case: (-case.priority, case.submitted_at))

    assert claim_all(on_duty(claimer)) == [case.pk for case in expected]


def test_it_claims_only_in_the_professionals_skills(
    claimer: Professional, respiratory: Skill, cardiology: Skill, sick_pay: Skill, submit: Callable[..., Case]
) -> None:
    heart = age(submit(cardiology, priority=Priority.URGENT), waiting_at=ago(days=1))
    wages = age(submit(sick_pay, priority=Priority.URGENT), waiting_at=ago(days=1))
    lungs = submit(respiratory)

    assert claim_all(on_duty(claimer)) == [lungs.pk]
    assert reload(heart).status == reload(wages).status == Status.WAITING


def test_it_gives_the_claimed_case_active_with_its_first_response(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    case = submit(respiratory)
    professional = on_duty(claimer)
    before = timezone.now()

    claimed = services.case_claim_next(professional=professional)

    assert claimed is not None and claimed.pk == case.pk
    row = reload(case)
    assert (row.status, row.assignee) == (Status.ACTIVE, professional)
    assert row.first_response_at is not None and row.first_response_at >= before
    assert row.accepted_at == row.first_response_at
    assert list(row.events.values_list("verb", "actor")) == [
        (Verb.SUBMITTED, case.resident_id), (Verb.WAITING, None),
        (Verb.CLAIMED, professional.user.pk), (Verb.ACCEPTED, professional.user.pk),
    ]
    professional.refresh_from_db()
    assert professional.last_assigned_at is not None and professional.last_assigned_at >= before


def test_it_claims_in_at_most_10_statements_and_announces_it_once(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case],
    django_assert_max_num_queries: Callable[..., Any], django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Taken and accepted at once: one write, both steps in the timeline, one room line (taking a case
    # from the line is accepting it), one status, one refresh for the queue and one for the dashboard.
    for _ in range(3):
        submit(respiratory)
    professional = on_duty(claimer)

    # 7 statements, the figures' tally of first responses and the savepoint around them (there were
    # 15, with 8 broadcasts), and the resident's notice (their notice settings, its row); on
    # PostgreSQL the claim is one statement, as many as the bare queue update, and the notice its
    # own transaction after it.
    from notices import tasks as notice_tasks
    from notices.reminders import claims_notify

    queued: list[float | None] = []
    # On PostgreSQL the notice is the job's, not the claim's: held back here (eager jobs would run
    # inside the claim) and run after the claim's statements are counted.
    monkeypatch.setattr(
        notice_tasks.claims_notify, "apply_async", lambda args, countdown=None: queued.append(countdown)
    )
    with django_capture_on_commit_callbacks() as callbacks, django_assert_max_num_queries(12) as queries:
        claimed = services.case_claim_next(professional=professional)

    assert claimed is not None and claimed.status == Status.ACTIVE
    if connection.vendor == "postgresql":  # and once per connection, the statement's PREPARE
        statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("PREPARE ")]
        assert len(statements) == 1 and statements[0].lstrip().startswith("WITH")
        # The four events handed to the sending loop at once: one wake-up, not four; the notice's
        # job queued at once.
        assert len(callbacks) == 1
        assert queued == [None]
        assert claims_notify() == 1
    assert Notice.objects.filter(case=claimed, kind=NoticeKind.CASE_ACCEPTED).count() == 1
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(events, "publish_all", lambda payloads: sent.extend((g, p["type"]) for g, p in payloads))
    for callback in callbacks:
        callback()
    assert sent == [
        (events.case_group(claimed.pk), "case.message"),
        (events.case_group(claimed.pk), "case.status"),
        (events.queue_group(respiratory.pk), "queue.changed"),
        (events.DASHBOARD_GROUP, "queue.changed"),
    ]
    assert list(reload(claimed).events.values_list("verb", flat=True))[-2:] == [Verb.CLAIMED, Verb.ACCEPTED]
    room = list(claimed.messages.values_list("seq", "kind", "sender", "detail"))
    assert room == [(1, "system", professional.user.pk, {"verb": Verb.ACCEPTED})]
    assert reload(claimed).last_seq == 1


def test_it_returns_none_when_the_queue_is_empty(claimer: Professional, respiratory: Skill) -> None:
    assert services.case_claim_next(professional=on_duty(claimer)) is None


def test_it_refuses_a_claim_from_a_professional_off_duty(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case]
) -> None:
    case = submit(respiratory)

    with pytest.raises(CaseError):
        services.case_claim_next(professional=claimer)

    assert reload(case).status == Status.WAITING


def test_it_refuses_a_claim_from_a_professional_at_capacity(
    professional_factory: MakeProfessional, respiratory: Skill, submit: Callable[..., Case],
    give_load: Callable[..., None],
) -> None:
    full = professional_factory([respiratory], capacity=2, on_duty=False)
    give_load(full, 2)
    case = submit(respiratory)
    on_duty(full)

    with pytest.raises(CaseError):
        services.case_claim_next(professional=full)

    assert reload(case).status == Status.WAITING


# --- what a professional sees of the queue ------------------------------------------------


def test_it_shows_queue_entries_without_the_residents_identity(
    claimer: Professional, respiratory: Skill, submit: Callable[..., Case], alice: User
) -> None:
    urgent = submit(respiratory, priority=Priority.URGENT)
    submit(respiratory)

    entries = selectors.queue_for_professional(claimer)

    assert [e.priority for e in entries] == [Priority.URGENT, Priority.NORMAL]
    assert entries[0].skill == respiratory
    assert entries[0].description == urgent.description
    identity = {alice.name, alice.phone, urgent.reference}
    for entry in entries:
        assert {f.name for f in dataclasses.fields(entry)}.isdisjoint(
            {"case", "resident", "reference", "phone", "name", "pk", "id", "documents"}
        )
        for value in dataclasses.asdict(entry).values():
            assert not isinstance(value, (Case, User))
            assert not any(secret in str(value) for secret in identity)


def test_it_shows_only_cases_in_the_professionals_skills_in_the_queue(
    claimer: Professional, respiratory: Skill, cardiology: Skill, sick_pay: Skill, submit: Callable[..., Case]
) -> None:
    submit(cardiology, priority=Priority.URGENT)
    submit(sick_pay, priority=Priority.URGENT)
    submit(respiratory)

    assert [e.skill for e in selectors.queue_for_professional(claimer)] == [respiratory]

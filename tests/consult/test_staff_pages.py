"""The staff pages read a fixed number of statements however many cases, services and
professionals there are: the counts below hold for a handful of rows as for a hundred thousand
(bench/pages.py measures the time at that size)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services
from consult.models import Case, CaseEvent, Kind, Priority, Professional, Rating, Role, Skill, Status, User, Verb
from consult.tally import tally_rebuild


@pytest.fixture
def crowd(
    case: Case, alice: User, skill_factory: Callable[..., Skill], professional_factory: Callable[..., Professional],
) -> list[Professional]:
    """Six services, a dozen professionals on and off duty, and three hundred cases in every
    state over a year, with ratings and handovers."""
    skills = [skill_factory() for _ in range(4)] + [skill_factory(kind=Kind.LEGAL) for _ in range(2)]
    people = [
        professional_factory(
            [skills[n % 6], skills[(n + 1) % 6]] if skills[n % 6].kind == skills[(n + 1) % 6].kind else [skills[n % 6]],
            role=Role.DOCTOR if skills[n % 6].kind == Kind.MEDICAL else Role.LAWYER,
            on_duty=n % 3 != 0,
        )
        for n in range(12)
    ]
    statuses = [Status.WAITING, Status.ASSIGNED, Status.ACTIVE, Status.RESOLVED, Status.CLOSED, Status.WITHDRAWN]
    now = timezone.now()
    made = []
    for n in range(300):
        skill, status = skills[n % 6], statuses[n % 6]
        submitted = now - dt.timedelta(days=n, hours=n % 7)
        handled = status not in (Status.WAITING, Status.WITHDRAWN)
        assignee = next(p for p in people if p.kind == skill.kind and skill in p.skills.all()) if handled else None
        made.append(Case(
            reference=f"T{n:07d}", kind=skill.kind, skill=skill, resident=alice, assignee=assignee, status=status,
            priority=n % 3, description="咳嗽", created_at=submitted, submitted_at=submitted,
            first_response_at=submitted + dt.timedelta(hours=1 + n % 5) if handled else None,
            resolved_at=submitted + dt.timedelta(hours=9 + n % 11) if status in (Status.RESOLVED, Status.CLOSED)
            else None,
        ))
    made = Case.objects.bulk_create(made)
    Rating.objects.bulk_create(Rating(case=c, score=1 + c.pk % 5) for c in made if c.status == Status.CLOSED)
    CaseEvent.objects.bulk_create(CaseEvent(case=c, verb=Verb.DECLINED) for c in made[::7])
    # Written around the services, which keep the figures' tally: counted afresh.
    tally_rebuild()
    return people


def test_it_renders_the_dashboard_in_a_bounded_number_of_queries(
    crowd: list[Professional], coordinator: User, login: Callable[..., Client], django_assert_max_num_queries: Any,
) -> None:
    client = login(coordinator)
    # session, user, the second-factor device the session proved, waiting per service, services,
    # professionals on duty with their load, open cases, failed background jobs, notices not delivered,
    # erasure requests waiting
    with django_assert_max_num_queries(10):
        page = client.get(reverse("dashboard"))

    assert page.status_code == 200
    rows = {row.skill.code: row for row in page.context["rows"]}
    waiting = Case.objects.filter(status=Status.WAITING)
    assert sum(row.waiting for row in rows.values()) == waiting.count()
    for row in rows.values():
        oldest = waiting.filter(skill=row.skill).order_by("submitted_at").first()
        assert row.waiting == waiting.filter(skill=row.skill).count()
        assert row.oldest_waiting_at == (oldest.submitted_at if oldest else None)
        for professional in row.professionals:
            assert professional.on_duty
            load = Case.objects.filter(assignee=professional, status__in=(Status.ASSIGNED, Status.ACTIVE)).count()
            assert professional.load == load
    shown = list(page.context["open_cases"])
    expected = Case.objects.filter(status__in=(Status.WAITING, Status.ASSIGNED, Status.ACTIVE)).order_by(
        "-priority", "submitted_at", "pk"
    )
    assert shown == list(expected[:200])


def test_it_renders_a_coordinators_case_page_with_the_reassignment_choice_in_a_bounded_number_of_queries(
    crowd: list[Professional], case: Case, coordinator: User, doctor: Professional,
    login: Callable[..., Client], django_assert_max_num_queries: Any,
) -> None:
    client = login(coordinator)
    # session, user, second-factor device, case, chat, reassignment choices, documents, timeline,
    # the domain's records..., the line recording this read on the timeline (once in 30 minutes), and
    # the case's erasure request (a coordinator of its domain answers it there), how far the others
    # have read the chat (the read marks shown on the page)
    with django_assert_max_num_queries(16):
        page = client.get(reverse("case_detail", args=[case.reference]))

    assert page.status_code == 200
    choices = list(page.context["reassign_form"].fields["professional"].queryset)
    # Same kind, not the assignee; those with the case's service first, then the least loaded.
    assert doctor not in choices and all(p.kind == Kind.MEDICAL for p in choices)
    keys = [(not p.has_skill, p.load) for p in choices]
    assert keys == sorted(keys)
    for professional in choices:
        assert professional.has_skill == professional.skills.filter(pk=case.skill_id).exists()
        load = Case.objects.filter(assignee=professional, status__in=(Status.ASSIGNED, Status.ACTIVE)).count()
        assert professional.load == load


@pytest.mark.parametrize("name", ["report", "report_csv"])
def test_it_renders_the_report_and_its_csv_in_a_bounded_number_of_queries(
    name: str, crowd: list[Professional], coordinator: User, login: Callable[..., Client],
    django_assert_max_num_queries: Any,
) -> None:
    client = login(coordinator)
    # session, user, second-factor device, counts per service and month (the tally), people,
    # medians, three for the domains, services (and the filter form's choices on the page)
    with django_assert_max_num_queries(13):
        page = client.get(reverse(name))

    assert page.status_code == 200


def test_it_computes_the_public_figures_with_a_cold_cache_in_a_bounded_number_of_queries(
    crowd: list[Professional], login: Callable[..., Client], django_assert_max_num_queries: Any,
) -> None:
    cache.clear()
    # counts per service and month (the tally), people, medians, three for the domains, services
    with django_assert_max_num_queries(7):
        page = login(None).get(reverse("figures"))

    assert page.status_code == 200
    assert page.context["figures"].consultations == Case.objects.filter(kind=Kind.MEDICAL).exclude(
        status=Status.WITHDRAWN
    ).count()
    cache.clear()


def test_it_counts_a_waiting_case_once_on_the_dashboard_whatever_its_priority(
    alice: User, respiratory: Skill, coordinator: User, login: Callable[..., Client]
) -> None:
    for priority in (Priority.NORMAL, Priority.URGENT):
        services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=priority)

    rows = login(coordinator).get(reverse("dashboard")).context["rows"]

    assert [(row.skill, row.waiting) for row in rows] == [(respiratory, 2)]


@pytest.mark.parametrize(
    ("language", "status", "priority"), [("zh-hans", "排队中", "紧急"), ("en", "Waiting in line", "Urgent")]
)
def test_it_labels_the_open_cases_in_the_readers_language(
    language: str, status: str, priority: str, alice: User, respiratory: Skill, coordinator: User,
    login: Callable[..., Client],
) -> None:
    services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.URGENT)
    other = "Waiting in line" if language != "en" else "排队中"

    html = login(coordinator, language=language).get(reverse("dashboard")).content.decode()

    assert f'<span class="status status-waiting">{status}</span>' in html
    assert f'<span class="priority">{priority}</span>' in html
    assert other not in html


def test_it_takes_a_doctor_coming_on_duty_to_the_waiting_case_given_to_them(
    alice: User, respiratory: Skill, other_doctor: Professional, login: Callable[..., Client]
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽两周。")
    assert case.status == Status.WAITING  # nobody on duty
    client = login(other_doctor.user, "en")

    response = client.post(reverse("set_on_duty"), {"on_duty": "on"}, follow=True)

    assert response.redirect_chain == [(reverse("case_detail", args=[case.reference]), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "You are on duty. A waiting case was given to you: accept it to start."
    ]
    assert "Accept the case" in response.content.decode()
    assert Case.objects.get(pk=case.pk).assignee == other_doctor


def test_it_keeps_a_doctor_coming_on_duty_on_the_queue_when_nothing_waits(
    other_doctor: Professional, login: Callable[..., Client]
) -> None:
    response = login(other_doctor.user, "en").post(reverse("set_on_duty"), {"on_duty": "on"})

    assert response["Location"] == reverse("work_queue")

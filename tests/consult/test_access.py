"""Who may reach what: every URL of consult/urls.py for every member of the cast.

A case someone may not see is exactly as absent as a case that does not exist: the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, resolve, reverse

from consult import selectors, services, urls
from consult.models import Case, CaseEvent, Priority, Professional, Skill, Status, User
from tests.consult.test_journey import intake_data

OWNER = "owner"
OTHER_RESIDENT = "other_resident"
ASSIGNEE = "assignee"
SAME_SKILL = "same_skill_professional"
OTHER_KIND = "other_kind_professional"
COORDINATOR = "coordinator"
ANONYMOUS = "anonymous"
ROLES = (OWNER, OTHER_RESIDENT, ASSIGNEE, SAME_SKILL, OTHER_KIND, COORDINATOR, ANONYMOUS)

# Outcomes: a status code, or a redirect named by where it goes.
OK, NOT_FOUND, NOT_ALLOWED = "200", "404", "405"
TO_LOGIN = "redirect to login"
TO_ADMIN_LOGIN = "redirect to admin login"
TO_CASE = "redirect to the case"
TO_QUEUE = "redirect to the work queue"
TO_HOME = "redirect to home"
TO_CASES = "redirect to my cases"
TO_DASHBOARD = "redirect to the dashboard"
REFUSED = (NOT_FOUND, NOT_ALLOWED, TO_LOGIN, TO_ADMIN_LOGIN)

ACTIONS = ("accept", "decline", "resolve", "close", "withdraw", "reassign")


def _everyone(outcome: str) -> dict[str, str]:
    return dict.fromkeys(ROLES, outcome)


def _signed_in(outcome: str) -> dict[str, str]:
    return {**_everyone(outcome), ANONYMOUS: TO_LOGIN}


def _only(roles: dict[str, str], default: str = NOT_FOUND) -> dict[str, str]:
    return {**_signed_in(default), **roles}


ACTION_OUTCOMES: dict[str, dict[str, str]] = {
    # accept/decline/resolve are for professionals: a resident or coordinator is not one (404).
    "accept": _only({ASSIGNEE: TO_CASE}),
    "decline": _only({ASSIGNEE: TO_QUEUE}),
    "resolve": _only({ASSIGNEE: TO_CASE}),
    # Everyone who sees the case may ask; the service refuses those who may not (a message).
    "close": _only({OWNER: TO_CASE, ASSIGNEE: TO_CASE, COORDINATOR: TO_CASE}),
    "withdraw": _only({OWNER: TO_CASE, ASSIGNEE: TO_CASE, COORDINATOR: TO_CASE}),
    "reassign": _only({OWNER: TO_CASE, ASSIGNEE: TO_CASE, COORDINATOR: TO_CASE}),
}

PROFESSIONALS_ONLY = _only({ASSIGNEE: OK, SAME_SKILL: OK, OTHER_KIND: OK})

# url key -> method -> role -> outcome
MATRIX: dict[str, dict[str, dict[str, str]]] = {
    "home": {"GET": _everyone(OK)},
    "signup": {"GET": _everyone(OK)},
    # Signed in already: each to their own landing (a resident with a case to her cases, one
    # without to the catalogue, professionals to the queue, the coordinator to the dashboard).
    "login": {
        "GET": {
            OWNER: TO_CASES, OTHER_RESIDENT: TO_HOME, ASSIGNEE: TO_QUEUE, SAME_SKILL: TO_QUEUE, OTHER_KIND: TO_QUEUE,
            COORDINATOR: TO_DASHBOARD, ANONYMOUS: OK,
        }
    },
    "logout": {"GET": _everyone(NOT_ALLOWED), "POST": _everyone(TO_HOME)},
    "password_change": {"GET": _signed_in(OK)},
    "password_change_done": {"GET": _signed_in(OK)},
    "set_language": {"POST": _everyone(TO_HOME)},
    "case_detail": {"GET": _only({OWNER: OK, ASSIGNEE: OK, COORDINATOR: OK})},
    **{
        f"case_action:{action}": {"GET": _everyone(NOT_ALLOWED), "POST": outcomes}
        for action, outcomes in ACTION_OUTCOMES.items()
    },
    "my_cases": {"GET": _signed_in(OK)},
    "work_queue": {"GET": PROFESSIONALS_ONLY},
    "take_next": {
        "GET": _everyone(NOT_ALLOWED),
        "POST": _only({ASSIGNEE: TO_QUEUE, SAME_SKILL: TO_QUEUE, OTHER_KIND: TO_QUEUE}),
    },
    "set_on_duty": {
        "GET": _everyone(NOT_ALLOWED),
        "POST": _only({ASSIGNEE: TO_QUEUE, SAME_SKILL: TO_QUEUE, OTHER_KIND: TO_QUEUE}),
    },
    "dashboard": {"GET": _only({COORDINATOR: OK})},
    # Only residents open cases; anyone else signed in is sent home with a message. A visitor
    # gets the service's page (what it is, and the phone code that signs them up); a visitor's
    # POST is sent to log in.
    "case_new": {
        "GET": {**_signed_in(TO_HOME), OWNER: OK, OTHER_RESIDENT: OK, ANONYMOUS: OK},
        "POST": {**_signed_in(TO_HOME), OWNER: TO_CASE, OTHER_RESIDENT: TO_CASE},
    },
    "admin:index": {"GET": {**_everyone(TO_ADMIN_LOGIN), COORDINATOR: OK}},
}

# What the case looks like after an allowed request; any other request leaves it as it was.
CASE_AFTER: dict[tuple[str, str, str], tuple[str, str | None]] = {
    (ASSIGNEE, "POST", "case_action:accept"): (Status.ACTIVE, ASSIGNEE),
    (ASSIGNEE, "POST", "case_action:decline"): (Status.WAITING, None),
    (OWNER, "POST", "case_action:withdraw"): (Status.WITHDRAWN, ASSIGNEE),
    (COORDINATOR, "POST", "case_action:reassign"): (Status.ASSIGNED, SAME_SKILL),
}

ROWS = [
    pytest.param(role, key, method, outcome, id=f"{role}-{method}-{key}")
    for key, methods in MATRIX.items()
    for method, outcomes in methods.items()
    for role, outcome in outcomes.items()
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(
    case: Case, alice: User, bob: User, doctor: Professional, other_doctor: Professional,
    lawyer: Professional, coordinator: User,
) -> dict[str, User | None]:
    return {
        OWNER: alice,
        OTHER_RESIDENT: bob,
        ASSIGNEE: doctor.user,
        SAME_SKILL: other_doctor.user,
        OTHER_KIND: lawyer.user,
        COORDINATOR: coordinator,
        ANONYMOUS: None,
    }


def _url(key: str, case: Case) -> str:
    if key.startswith("case_action:"):
        return reverse("case_action", args=[case.reference, key.split(":", 1)[1]])
    if key == "case_detail":
        return reverse("case_detail", args=[case.reference])
    if key == "case_new":
        return reverse("case_new", args=[case.skill.code])
    return reverse(key)


def _assert_outcome(response: Any, outcome: str, key: str, url: str, case: Case) -> None:
    expected_location = {
        TO_LOGIN: f"{reverse('login')}?next={quote(url)}",
        TO_ADMIN_LOGIN: f"{reverse('admin:login')}?next={quote(url)}",
        TO_QUEUE: reverse("work_queue"),
        TO_HOME: reverse("home"),
        TO_CASES: reverse("my_cases"),
        TO_DASHBOARD: reverse("dashboard"),
    }
    if outcome in (OK, NOT_FOUND, NOT_ALLOWED):
        assert response.status_code == int(outcome)
        return
    assert response.status_code == 302
    location = response["Location"]
    if outcome == TO_CASE:
        # case_new redirects to the case it just opened, actions to the case acted on.
        assert location.startswith("/cases/")
        assert Case.objects.filter(reference=location.split("/")[2]).exists()
        if key != "case_new":
            assert location == reverse("case_detail", args=[case.reference])
    else:
        assert location == expected_location[outcome]


@pytest.mark.parametrize(("role", "key", "method", "outcome"), ROWS)
def test_it_gives_each_role_exactly_its_access_to_each_url(
    role: str, key: str, method: str, outcome: str, cast: dict[str, User | None], case: Case,
    login: Callable[..., Client],
) -> None:
    client = login(cast[role])
    url = _url(key, case)
    events_before = CaseEvent.objects.count()
    cases_before = Case.objects.count()
    data = {
        "professional": Professional.objects.get(user=cast[SAME_SKILL]).pk,
        "language": "zh-hans",
        "next": "/",
        "on_duty": "on",
    }
    if key == "case_new":
        intake_form = login(cast[OWNER]).get(url).context["form"]
        data.update(intake_data(intake_form, case.skill, "胸闷，想咨询。"))
    response = client.post(url, data) if method == "POST" else client.get(url)

    _assert_outcome(response, outcome, key, url, case)

    case.refresh_from_db()
    status, assignee_role = CASE_AFTER.get((role, method, key), (Status.ASSIGNED, ASSIGNEE))
    assert case.status == status
    expected_assignee = cast[assignee_role] if assignee_role else None
    assert (case.assignee.user if case.assignee else None) == expected_assignee
    if outcome in REFUSED:
        assert CaseEvent.objects.count() == events_before
        assert Case.objects.count() == cases_before


def _missing_reference(case: Case) -> str:
    return "ZZZZZZZZ" if case.reference != "ZZZZZZZZ" else "YYYYYYYY"


@pytest.mark.parametrize("outsider", [OTHER_RESIDENT, SAME_SKILL, OTHER_KIND])
def test_it_answers_a_forbidden_case_with_the_same_404_as_a_missing_one(
    outsider: str, cast: dict[str, User | None], case: Case, login: Callable[..., Client]
) -> None:
    client = login(cast[outsider])
    forbidden = client.get(reverse("case_detail", args=[case.reference]))
    forbidden_lowercase = client.get(reverse("case_detail", args=[case.reference.lower()]))
    missing = client.get(reverse("case_detail", args=[_missing_reference(case)]))
    missing_lowercase = client.get(reverse("case_detail", args=[_missing_reference(case).lower()]))

    responses = [forbidden, forbidden_lowercase, missing, missing_lowercase]
    assert [r.status_code for r in responses] == [404] * 4
    assert len({r.content for r in responses}) == 1


@pytest.mark.parametrize("action", ACTIONS)
def test_it_answers_an_action_on_a_forbidden_case_with_the_same_404_as_on_a_missing_one(
    action: str, cast: dict[str, User | None], case: Case, login: Callable[..., Client]
) -> None:
    client = login(cast[OTHER_RESIDENT])
    forbidden = client.post(reverse("case_action", args=[case.reference, action]))
    missing = client.post(reverse("case_action", args=[_missing_reference(case), action]))

    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content


@pytest.mark.parametrize("role", [OWNER, ASSIGNEE, COORDINATOR])
def test_it_finds_a_case_by_its_lowercase_reference_for_those_who_may_see_it(
    role: str, cast: dict[str, User | None], case: Case, login: Callable[..., Client]
) -> None:
    response = login(cast[role]).get(reverse("case_detail", args=[case.reference.lower()]))

    assert response.status_code == 200
    assert response.context["case"] == case
    assert case.reference in response.content.decode()


def test_it_refuses_bob_alices_case_without_showing_any_of_it(
    cast: dict[str, User | None], case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = login(cast[OTHER_RESIDENT]).get(reverse("case_detail", args=[case.reference]))

    assert response.status_code == 404
    body = response.content.decode()
    assert case.description not in body
    assert alice.name not in body
    assert alice.phone not in body
    assert case.reference not in body


def test_it_shows_alice_her_case_with_its_description(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    # The positive half of the refusal above: the description is on the page for its owner.
    response = login(alice).get(reverse("case_detail", args=[case.reference]))

    assert response.status_code == 200
    assert case.description in response.content.decode()


@pytest.mark.parametrize(
    ("method", "key"),
    [("GET", "case_detail")] + [("POST", f"case_action:{action}") for action in ACTIONS],
)
def test_it_asks_case_get_for_user_before_every_case_page_and_action(
    method: str, key: str, cast: dict[str, User | None], case: Case, login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, str]] = []
    real = selectors.case_get_for_user

    def spy(*, user: Any, reference: str) -> Case:
        calls.append((user, reference))
        return real(user=user, reference=reference)

    monkeypatch.setattr(selectors, "case_get_for_user", spy)
    client = login(cast[COORDINATOR])
    url = _url(key, case).replace(case.reference, case.reference.lower())

    if method == "POST":
        client.post(url)
    else:
        client.get(url)

    assert calls
    user, reference = calls[0]
    assert user == cast[COORDINATOR]
    assert reference == case.reference.lower()


def test_it_answers_an_unknown_action_with_404_and_changes_nothing(
    cast: dict[str, User | None], case: Case, login: Callable[..., Client]
) -> None:
    events_before = CaseEvent.objects.count()

    for role in (OWNER, ASSIGNEE, COORDINATOR):
        response = login(cast[role]).post(f"/cases/{case.reference}/delete/")
        assert response.status_code == 404

    case.refresh_from_db()
    assert case.status == Status.ASSIGNED
    assert CaseEvent.objects.count() == events_before


def test_it_answers_a_service_that_does_not_exist_with_404(alice: User, login: Callable[..., Client]) -> None:
    response = login(alice).get(reverse("case_new", args=["no-such-service"]))

    assert response.status_code == 404


@pytest.fixture
def waiting_case(case: Case, alice: User, respiratory: Skill, doctor: Professional) -> Case:
    """A second case of Alice's that waits in line: the only doctor on duty went off duty."""
    services.professional_set_on_duty(professional=doctor, on_duty=False)
    waiting = services.case_submit(
        resident=alice, skill=respiratory, description="气短三天，爬楼梯更明显。", priority=Priority.ELDERLY
    )
    assert waiting.status == Status.WAITING
    return waiting


def test_it_never_shows_a_waiting_case_to_a_professional_before_they_take_it(
    waiting_case: Case, doctor: Professional, other_doctor: Professional, lawyer: Professional,
    login: Callable[..., Client],
) -> None:
    url = reverse("case_detail", args=[waiting_case.reference])
    for professional in (doctor, other_doctor, lawyer):
        assert login(professional.user).get(url).status_code == 404

    # On duty by the flag: going on duty through the service would hand them the case unasked.
    Professional.objects.filter(pk=other_doctor.pk).update(on_duty=True)
    client = login(other_doctor.user)
    taken = client.post(reverse("take_next"))

    assert taken.status_code == 302
    assert taken["Location"] == url
    assert client.get(url).status_code == 200
    assert login(doctor.user).get(url).status_code == 404


def test_it_shows_waiting_entries_in_the_work_queue_without_the_residents_identity(
    waiting_case: Case, alice: User, other_doctor: Professional, login: Callable[..., Client]
) -> None:
    response = login(other_doctor.user).get(reverse("work_queue"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "气短三天" in body  # the entry is there ...
    assert alice.name not in body  # ... but not who sent it
    assert alice.phone not in body
    assert waiting_case.reference not in body


def test_it_keeps_a_waiting_medical_case_out_of_a_lawyers_queue(
    waiting_case: Case, lawyer: Professional, login: Callable[..., Client]
) -> None:
    response = login(lawyer.user).get(reverse("work_queue"))

    assert response.status_code == 200
    assert "气短三天" not in response.content.decode()


def test_it_lists_only_a_residents_own_cases_on_my_cases(
    case: Case, alice: User, bob: User, login: Callable[..., Client]
) -> None:
    assert case.reference in login(alice).get(reverse("my_cases")).content.decode()
    assert case.reference not in login(bob).get(reverse("my_cases")).content.decode()


def test_it_shows_the_dashboard_only_with_figures_to_a_coordinator(
    waiting_case: Case, coordinator: User, login: Callable[..., Client]
) -> None:
    response = login(coordinator).get(reverse("dashboard"))

    assert response.status_code == 200
    row = next(r for r in response.context["rows"] if r.skill == waiting_case.skill)
    assert row.waiting == 1


# Query-count pins: the hot list pages must not grow a query per row.


@pytest.fixture
def several_cases(
    case: Case, alice: User, respiratory: Skill, cardiology: Skill, doctor: Professional
) -> list[Case]:
    more = [
        services.case_submit(resident=alice, skill=respiratory, description=f"病例{n}") for n in range(3)
    ]
    services.professional_set_on_duty(professional=doctor, on_duty=False)
    more += [services.case_submit(resident=alice, skill=cardiology, description=f"心悸{n}") for n in range(2)]
    more += [services.case_submit(resident=alice, skill=respiratory, description=f"排队{n}") for n in range(2)]
    return [case, *more]


def test_it_renders_my_cases_in_a_bounded_number_of_queries(
    several_cases: list[Case], alice: User, login: Callable[..., Client],
    django_assert_max_num_queries: Any,
) -> None:
    client = login(alice)
    # A fixed few (session, user, cases...), 1 per waiting case (its place in line) and 2 per service
    # with a waiting case (its pace, computed once): 11 for the 4 waiting respiratory cases here.
    with django_assert_max_num_queries(11):
        response = client.get(reverse("my_cases"))

    assert response.status_code == 200
    assert len(response.context["cases"]) == len(several_cases)


def test_it_renders_the_work_queue_in_a_bounded_number_of_queries(
    several_cases: list[Case], doctor: Professional, login: Callable[..., Client],
    django_assert_max_num_queries: Any,
) -> None:
    client = login(doctor.user)
    # One more than before staff had a second factor: the device the session proved is read.
    with django_assert_max_num_queries(7):
        response = client.get(reverse("work_queue"))

    assert response.status_code == 200
    assert len(response.context["open_cases"]) == 4
    assert len(response.context["queue"]) == 2


SAMPLE_ARGS = {"reference": "ABCDEFGH", "action": "accept", "document_id": 1, "skill_code": "respiratory",
               "code": "ABCD2345", "poster_id": 1}
NAMED = [p for p in urls.urlpatterns if isinstance(p, URLPattern) and p.name]


@pytest.mark.parametrize("name", [p.name for p in NAMED])
def test_it_routes_each_named_url_to_its_own_view(name: str) -> None:
    # An earlier catch-all (e.g. "cases/<reference>/<action>/") must not swallow a later page.
    pattern = next(p for p in NAMED if p.name == name)
    kwargs = {arg: SAMPLE_ARGS[arg] for arg in pattern.pattern.regex.groupindex}

    assert resolve(reverse(name, kwargs=kwargs)).url_name == name

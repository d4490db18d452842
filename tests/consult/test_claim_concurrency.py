"""Many professionals taking from one queue at once: no case is given twice, none is lost."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from consult import services
from consult.errors import CaseError
from consult.models import Case, CaseEvent, Message, Professional, Skill, Status, User, Verb

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrent claims need PostgreSQL (row locks with SKIP LOCKED); SQLite serialises every writer",
    ),
]

WORKERS = 16
CASES = 300


@pytest.fixture(params=["planned each time", "prepared"])
def claim_statement_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The claim statement planned on every claim (connections closed after each request, as behind
    a transaction-mode pooler) and prepared once per connection (persistent connections): the
    generic plan PostgreSQL switches to after a few claims must give the same line."""
    options = {k: v for k, v in connection.settings_dict.get("OPTIONS", {}).items() if k != "prepare_threshold"}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0 if request.param == "planned each time" else 60)
    return str(request.param)


@pytest.mark.django_db(transaction=True)
def test_it_gives_every_waiting_case_to_exactly_one_of_many_concurrent_claimers(
    professional_factory: Callable[..., Professional], skill_factory: Callable[..., Skill], alice: User,
    settings: Any, claim_statement_mode: str,
) -> None:
    # Hashing 16 passwords the production way would take most of the time budget.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    skill = skill_factory()
    professionals = [professional_factory([skill], capacity=1000, on_duty=False) for _ in range(WORKERS)]
    # No one on duty: every case waits in line. One transaction: 300 commits would only cost time.
    with transaction.atomic():
        for n in range(CASES):
            services.case_submit(resident=alice, skill=skill, description=f"case {n}", priority=n % 3)
    assert Case.objects.filter(status=Status.WAITING).count() == CASES
    # On duty by the flag: through the service the first would be handed the whole line.
    Professional.objects.update(on_duty=True)

    barrier = threading.Barrier(WORKERS)
    claimed: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(professional: Professional) -> None:
        mine: list[int] = []
        try:
            barrier.wait(timeout=10)
            while (case := services.case_claim_next(professional=professional)) is not None:
                mine.append(case.pk)
        except BaseException as error:
            errors.append(error)
        finally:
            claimed[professional.pk] = mine
            connection.close()

    threads = [threading.Thread(target=work, args=(p,)) for p in professionals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a claimer did not finish"
    assert errors == []

    everything = [pk for mine in claimed.values() for pk in mine]
    all_cases = set(Case.objects.values_list("pk", flat=True))
    assert len(everything) == CASES
    assert set(everything) == all_cases
    assert Counter(everything).most_common(1)[0][1] == 1

    claims = Counter(CaseEvent.objects.filter(verb=Verb.CLAIMED).values_list("case_id", flat=True))
    assert claims == Counter({pk: 1 for pk in all_cases})
    accepts = Counter(CaseEvent.objects.filter(verb=Verb.ACCEPTED).values_list("case_id", flat=True))
    assert accepts == claims
    assignees = dict(Case.objects.values_list("pk", "assignee_id"))
    for professional_pk, mine in claimed.items():
        assert all(assignees[pk] == professional_pk for pk in mine)
    assert Case.objects.filter(status=Status.ACTIVE, first_response_at__isnull=False).count() == CASES
    # One room line per claim, numbered from 1: no two claimers wrote to the same case's room.
    lines = Counter(Message.objects.values_list("case_id", "seq"))
    assert lines == Counter({(pk, 1): 1 for pk in all_cases})
    # More than one worker took part: the claims really ran side by side.
    assert sum(1 for mine in claimed.values() if mine) > 1


@pytest.mark.django_db(transaction=True)
def test_it_never_gives_one_professional_claiming_from_many_tabs_more_cases_than_their_capacity(
    professional_factory: Callable[..., Professional], skill_factory: Callable[..., Skill], alice: User,
    settings: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    skill = skill_factory()
    professional = professional_factory([skill], capacity=5, on_duty=False)
    with transaction.atomic():
        for n in range(40):
            services.case_submit(resident=alice, skill=skill, description=f"case {n}")
    Professional.objects.filter(pk=professional.pk).update(on_duty=True)
    professional.refresh_from_db()

    tabs = 8
    barrier = threading.Barrier(tabs)
    taken: list[int] = []
    refused: list[CaseError] = []
    errors: list[BaseException] = []

    def tab() -> None:
        try:
            barrier.wait(timeout=10)
            while (case := services.case_claim_next(professional=professional)) is not None:
                taken.append(case.pk)
        except CaseError as error:
            refused.append(error)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab) for _ in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a tab did not finish"
    assert errors == []

    # The professional's row lock makes the capacity check and the claim one step.
    assert len(taken) == len(set(taken)) == 5
    assert len(refused) == tabs
    assert Case.objects.filter(assignee=professional, status=Status.ACTIVE).count() == 5
    assert Case.objects.filter(status=Status.WAITING).count() == 35


@pytest.mark.django_db(transaction=True)
def test_it_gives_every_waiting_case_once_to_many_coming_on_duty_at_once_while_others_claim(
    professional_factory: Callable[..., Professional], skill_factory: Callable[..., Skill], alice: User,
    settings: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    skill = skill_factory()
    arriving = [professional_factory([skill], capacity=15, on_duty=False) for _ in range(WORKERS // 2)]
    claimers = [professional_factory([skill], capacity=1000, on_duty=False) for _ in range(WORKERS // 2)]
    with transaction.atomic():
        for n in range(CASES):
            services.case_submit(resident=alice, skill=skill, description=f"case {n}", priority=n % 3)
    Professional.objects.filter(pk__in=[p.pk for p in claimers]).update(on_duty=True)

    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def arrive(professional: Professional) -> None:
        try:
            barrier.wait(timeout=10)
            services.professional_set_on_duty(professional=professional, on_duty=True)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def claim(professional: Professional) -> None:
        try:
            barrier.wait(timeout=10)
            professional.refresh_from_db()
            while services.case_claim_next(professional=professional) is not None:
                pass
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=arrive, args=(p,)) for p in arriving]
    threads += [threading.Thread(target=claim, args=(p,)) for p in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    assert errors == []

    # Every case went to one professional, once: assigned to one arriving, or claimed.
    assert not Case.objects.filter(status=Status.WAITING).exists()
    given = Counter(
        CaseEvent.objects.filter(verb__in=[Verb.ASSIGNED, Verb.CLAIMED]).values_list("case_id", flat=True)
    )
    assert given == Counter({pk: 1 for pk in Case.objects.values_list("pk", flat=True)})
    for professional in arriving:
        assert Case.objects.filter(assignee=professional, status=Status.ASSIGNED).count() <= professional.capacity
    # Both ways took part: the fill and the claims ran side by side.
    assert Case.objects.filter(status=Status.ASSIGNED).exists()
    assert Case.objects.filter(status=Status.ACTIVE).exists()

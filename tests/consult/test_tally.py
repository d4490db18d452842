"""The figures' tally (counts per service and local day, consult/tally.py) kept by the services.

Whatever the services do to cases, the tally must equal a recount of the cases, and the figures
added up from it must equal the figures from rescanning every case."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from collections.abc import Callable

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from consult import figures
from consult import services as core
from consult.figures import Filters
from consult.models import Case, CaseEvent, CaseTally, Kind, Professional, Rating, Skill, Status, User
from consult.tally import COUNTS, SLOTS, _buckets, tally_refresh, tally_slot
from medical.services import note_save

Key = tuple[int, str, dt.date]


def kept() -> dict[Key, dict[str, int]]:
    """The tally's buckets that count something, their slots added up."""
    rows = CaseTally.objects.order_by().values("skill", "kind", "day").annotate(**{n: Sum(n) for n in COUNTS})
    return {(r["skill"], r["kind"], r["day"]): {n: r[n] for n in COUNTS} for r in rows if any(r[n] for n in COUNTS)}


def slots_counting(name: str) -> set[int]:
    return set(CaseTally.objects.filter(**{f"{name}__gt": 0}).values_list("slot", flat=True))


def recounted() -> dict[Key, dict[str, int]]:
    rows = _buckets(Case.objects.all(), CaseEvent.objects.all())
    return {(r["skill"], r["kind"], r["day"]): {n: r[n] for n in COUNTS} for r in rows}


def assert_kept(*filters: Filters) -> figures.Figures:
    """The tally equals a recount, and the figures from it those from rescanning the cases."""
    assert kept() == recounted()
    for each in (None, *filters):
        assert figures.compute(each) == figures.compute(each, rescan=True)
    return figures.compute()


def write_note(case: Case, doctor: Professional) -> None:
    note_save(case=case, professional=doctor, findings="胸片未见异常。", impression="急性支气管炎。", advice="多喝水。")


def test_it_keeps_the_tally_equal_to_a_recount_through_every_service_that_changes_a_case(
    alice: User, bob: User, respiratory: Skill, sick_pay: Skill, doctor: Professional,
    other_doctor: Professional, lawyer: Professional, coordinator: User,
) -> None:
    first = core.case_submit(resident=alice, skill=respiratory, description="咳嗽两周")
    assert kept() and assert_kept().consultations == 1

    core.case_decline(case=first, professional=doctor)  # back in the queue, never to the doctor again
    second = core.case_submit(resident=bob, skill=respiratory, description="发烧")  # to the doctor
    assert_kept()
    core.case_reassign(case=first, coordinator=coordinator, professional=doctor)
    core.case_decline(case=first, professional=doctor)
    core.professional_set_on_duty(professional=other_doctor, on_duty=True)
    claimed = core.case_claim_next(professional=other_doctor)
    assert claimed is not None and claimed.pk == first.pk
    assert assert_kept().median_first_response is not None

    write_note(claimed, other_doctor)
    core.case_resolve(case=claimed, professional=other_doctor)
    result = assert_kept()
    assert (result.resolved, result.resolved_first_contact) == (1, 0)  # it changed hands first
    core.case_close(case=claimed, user=coordinator)
    core.rating_submit(case=Case.objects.get(pk=first.pk), resident=alice, score=5)
    assert assert_kept().satisfaction_rate == 100

    core.case_accept(case=second, professional=doctor)
    assert_kept()
    core.case_withdraw(case=Case.objects.get(pk=second.pk), resident=bob)
    assert assert_kept().consultations == 1
    dispute = core.case_submit(resident=bob, skill=sick_pay, description="拖欠病假工资")
    Case.objects.filter(pk=dispute.pk).update(assigned_at=timezone.now() - dt.timedelta(days=1))
    assert core.case_sweep_unaccepted(timeout=dt.timedelta(minutes=1)) == 1  # timed out, back in line
    assert_kept()
    third = core.case_submit(resident=alice, skill=respiratory, description="胸闷")
    core.case_accept(case=third, professional=doctor)
    write_note(third, doctor)
    core.case_resolve(case=third, professional=doctor)
    assert_kept()
    core.case_close(case=third, user=coordinator)
    core.rating_skip(case=Case.objects.get(pk=third.pk), resident=alice)

    result = assert_kept(Filters(skill=respiratory), Filters(skill=sick_pay), Filters(date_from=timezone.localdate()))
    assert (result.consultations, result.disputes) == (2, 1)  # the withdrawn one left out
    assert (result.resolved, result.resolved_first_contact, result.rated, result.satisfied) == (2, 1, 1, 1)


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """Let the services' clock read `moment`."""

    def set_to(moment: dt.datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return set_to


def test_it_files_a_case_under_the_local_day_and_month_it_was_submitted_in(
    alice: User, bob: User, respiratory: Skill, doctor: Professional, at: Callable[[dt.datetime], None]
) -> None:
    zone = timezone.get_default_timezone()
    today = timezone.localdate()
    first_of_month = today.replace(day=1)
    last_of_before = first_of_month - dt.timedelta(days=1)
    # Either side of local midnight between two months (the same UTC day: Shanghai is UTC+8).
    at(dt.datetime.combine(last_of_before, dt.time(23, 30), tzinfo=zone))
    core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    at(dt.datetime.combine(first_of_month, dt.time(0, 30), tzinfo=zone))
    core.case_submit(resident=bob, skill=respiratory, description="发烧")

    assert {key[2] for key in kept()} == {last_of_before, first_of_month}
    result = assert_kept(Filters(date_from=first_of_month), Filters(date_to=last_of_before))
    assert [m["consultations"] for m in result.months[-2:]] == [1, 1]
    assert figures.compute(Filters(date_from=first_of_month, date_to=first_of_month)).consultations == 1


def test_it_fills_the_tally_from_the_cases_already_there_when_migrated(
    alice: User, respiratory: Skill, sick_pay: Skill
) -> None:
    now = timezone.now()
    made = Case.objects.bulk_create([
        Case(kind=skill.kind, skill=skill, resident=alice, status=status, description="旧案", submitted_at=when,
             first_response_at=when + dt.timedelta(hours=2), resolved_at=when + dt.timedelta(hours=9)
             if status == Status.CLOSED else None)
        for n, (skill, status) in enumerate([(respiratory, Status.CLOSED), (sick_pay, Status.ACTIVE),
                                             (respiratory, Status.WITHDRAWN), (respiratory, Status.CLOSED)])
        for when in [now - dt.timedelta(days=40 * n)]
    ])
    Rating.objects.create(case=made[0], score=4)
    assert not kept()  # written around the services

    importlib.import_module("consult.migrations.0013_case_tally").fill(apps, None)

    result = assert_kept()
    assert (result.consultations, result.disputes, result.resolved, result.satisfied) == (2, 1, 2, 1)
    assert result.disputes == Case.objects.filter(kind=Kind.LEGAL).count()


def test_it_counts_the_figures_from_the_tally_not_from_the_cases(
    alice: User, respiratory: Skill, doctor: Professional
) -> None:
    core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    CaseTally.objects.filter(slot=0).update(total=41)

    assert figures.compute().consultations == 41
    assert figures.compute(rescan=True).consultations == 1


def test_it_rescans_when_the_report_is_filtered_by_organisation_or_professional(
    alice: User, respiratory: Skill, doctor: Professional
) -> None:
    core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    CaseTally.objects.filter(slot=0).update(total=41)

    assert figures.compute(Filters(professional_id=doctor.pk)).consultations == 1
    assert figures.compute(Filters(organisation=doctor.organisation)).consultations == 1
    assert figures.compute(Filters(organisation="别的机构")).consultations == 0



def test_it_adds_each_professionals_first_responses_to_their_own_slot_and_recounts_them_into_slot_0(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional]
) -> None:
    doctors = [professional_factory([respiratory], on_duty=False) for _ in range(5)]
    assert len({tally_slot(d.pk) for d in doctors}) == 5  # consecutive ids
    for n in range(8):
        core.case_submit(resident=alice, skill=respiratory, description=f"咳嗽{n}")
    # A bucket is all its rows from its first case on: a claim always finds its own.
    assert CaseTally.objects.filter(skill=respiratory).count() == SLOTS
    assert slots_counting("total") == {0}

    for doctor in doctors:
        core.professional_set_on_duty(professional=doctor, on_duty=True)
        assert core.case_claim_next(professional=doctor) is not None
    assert slots_counting("responded") == {tally_slot(d.pk) for d in doctors}
    assert assert_kept().median_first_response is not None

    # A recount (a new submission in the bucket) folds every slot into slot 0.
    core.case_submit(resident=alice, skill=respiratory, description="发烧")
    assert slots_counting("responded") == {0}
    assert kept()[(respiratory.pk, Kind.MEDICAL, timezone.localdate())]["responded"] == 5
    assert_kept()

    core.professional_set_on_duty(professional=doctors[1], on_duty=True)
    core.case_claim_next(professional=doctors[1])  # after the recount: added to it
    assert slots_counting("responded") == {0, tally_slot(doctors[1].pk)}
    assert kept()[(respiratory.pk, Kind.MEDICAL, timezone.localdate())]["responded"] == 6
    assert_kept()


def test_it_makes_every_slot_of_the_buckets_already_there_when_migrated(
    alice: User, respiratory: Skill, sick_pay: Skill
) -> None:
    core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    core.case_submit(resident=alice, skill=sick_pay, description="欠薪")
    CaseTally.objects.exclude(slot=0).delete()  # as the tally was before its slots
    before = kept()

    importlib.import_module("consult.migrations.0015_case_tally_slots").spread(apps, None)

    for skill in (respiratory, sick_pay):
        assert CaseTally.objects.filter(skill=skill).count() == SLOTS
    assert kept() == before and slots_counting("total") == {0}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_tally_equal_to_a_recount_when_claims_and_recounts_of_a_bucket_run_at_once(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], settings: object,
) -> None:
    workers, cases = 8, 160
    doctors = [professional_factory([respiratory], capacity=1000, on_duty=False) for _ in range(workers)]
    with transaction.atomic():
        made = [core.case_submit(resident=alice, skill=respiratory, description=f"病例{n}") for n in range(cases)]
    for doctor in doctors:
        core.professional_set_on_duty(professional=doctor, on_duty=True)

    barrier = threading.Barrier(workers + 1)
    claiming = [workers]
    claimed: list[int] = []
    recounts = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(doctor: Professional) -> None:
        try:
            barrier.wait(timeout=10)
            while (case := core.case_claim_next(professional=doctor)) is not None:
                with lock:
                    claimed.append(case.pk)
        except BaseException as error:
            errors.append(error)
        finally:
            with lock:
                claiming[0] -= 1
            connection.close()

    def recount() -> None:
        try:
            barrier.wait(timeout=10)
            while claiming[0]:
                with transaction.atomic():
                    tally_refresh(made[0])
                recounts[0] += 1
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(d,)) for d in doctors] + [threading.Thread(target=recount)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    assert errors == []
    assert len(claimed) == cases and recounts[0] > 0
    assert kept()[(respiratory.pk, Kind.MEDICAL, timezone.localdate())]["responded"] == cases
    assert_kept()


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_it_recounts_a_bucket_only_once_the_claims_adding_to_its_other_slots_have_committed(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional],
) -> None:
    doctor = professional_factory([respiratory], on_duty=False)
    if tally_slot(doctor.pk) == 0:  # the claim must add to a slot the recount would not lock first
        doctor = professional_factory([respiratory], on_duty=False)
    case = core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    core.case_submit(resident=alice, skill=respiratory, description="发烧")
    claimed, commit = threading.Event(), threading.Event()
    recounter: list[int] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with transaction.atomic():
                core.professional_set_on_duty(professional=doctor, on_duty=True)
                assert core.case_claim_next(professional=doctor) is not None
                claimed.set()
                commit.wait(timeout=30)
        except BaseException as error:
            errors.append(error)
            claimed.set()
        finally:
            connection.close()

    def recount() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                recounter.append(cursor.fetchone()[0])
            with transaction.atomic():
                tally_refresh(case)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    claimer = threading.Thread(target=claim)
    claimer.start()
    assert claimed.wait(timeout=30)
    recounting = threading.Thread(target=recount)
    recounting.start()
    # The recount waits for the claim's row (not yet committed) before it counts anything.
    for _ in range(3000):
        if recounter and _waiting_on_a_lock(recounter[0]):
            break
        recounting.join(timeout=0.01)
    commit.set()
    claimer.join(timeout=30)
    recounting.join(timeout=30)
    assert errors == []
    assert kept()[(respiratory.pk, Kind.MEDICAL, timezone.localdate())]["responded"] == 1
    assert_kept()

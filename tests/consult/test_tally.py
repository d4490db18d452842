"""The figures' tally (counts per service and local day, consult/tally.py) kept by the services.

Whatever the services do to cases, the tally must equal a recount of the cases, and the figures
added up from it must equal the figures from rescanning every case."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable

import pytest
from django.apps import apps
from django.utils import timezone

from consult import figures
from consult import services as core
from consult.figures import Filters
from consult.models import Case, CaseEvent, CaseTally, Kind, Professional, Rating, Skill, Status, User
from consult.tally import COUNTS, _buckets
from medical.services import note_save

Key = tuple[int, str, dt.date]


def kept() -> dict[Key, dict[str, int]]:
    """The tally's rows that count something."""
    rows = CaseTally.objects.values("skill", "kind", "day", *COUNTS)
    return {(r["skill"], r["kind"], r["day"]): {n: r[n] for n in COUNTS} for r in rows if any(r[n] for n in COUNTS)}


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
    # Going on duty hands the waiting case over, to accept.
    assert [c.pk for c in core.professional_set_on_duty(professional=other_doctor, on_duty=True)] == [first.pk]
    assert_kept()
    claimed = core.case_accept(case=Case.objects.get(pk=first.pk), professional=other_doctor)
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
    CaseTally.objects.update(total=41)

    assert figures.compute().consultations == 41
    assert figures.compute(rescan=True).consultations == 1


def test_it_rescans_when_the_report_is_filtered_by_organisation_or_professional(
    alice: User, respiratory: Skill, doctor: Professional
) -> None:
    core.case_submit(resident=alice, skill=respiratory, description="咳嗽")
    CaseTally.objects.update(total=41)

    assert figures.compute(Filters(professional_id=doctor.pk)).consultations == 1
    assert figures.compute(Filters(organisation=doctor.organisation)).consultations == 1
    assert figures.compute(Filters(organisation="别的机构")).consultations == 0



@pytest.mark.django_db(transaction=True)
def test_it_rebuilds_the_tally_outside_a_transaction(alice: User, respiratory: Skill, doctor: Professional) -> None:
    """As a benchmark's seeding or a shell does (on PostgreSQL the table lock needs a transaction)."""
    from consult.tally import tally_rebuild

    core.case_submit(resident=alice, skill=respiratory, description="咳嗽两周")
    CaseTally.objects.all().delete()

    assert tally_rebuild() == 1
    assert kept() == recounted()

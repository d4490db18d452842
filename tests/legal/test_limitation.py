"""The time limit to apply for labour arbitration (Labour Dispute Mediation and Arbitration Law,
art. 27), worked out from the intake and shown to the worker and the lawyer; the lawyer is warned
30 and 7 days before it without typing it (issue 13, item 6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services as consult_services
from consult.models import Case, Professional, User
from legal.limitation import arbitration_limitation, ends_with_deadline, one_year_after
from legal.models import DisputeFacts, LegalIntake, MediationOutcome, Result
from notices.kinds import NoticeKind
from notices.models import Notice
from tests.legal.conftest import body

NOT_RUNNING = (
    "While you still work there, the one-year limit for unpaid pay does not run; it starts on the day the "
    "job ends (Labour Dispute Mediation and Arbitration Law, art. 27)."
)
FROM_THE_END = "One year from the end of the job (Labour Dispute Mediation and Arbitration Law, art. 27)."


def test_it_counts_one_year_to_the_same_day_and_from_29_february_to_the_end_of_february() -> None:
    assert one_year_after(date(2025, 6, 15)) == date(2026, 6, 15)
    assert one_year_after(date(2024, 2, 29)) == date(2025, 2, 28)
    assert ends_with_deadline(date(2025, 2, 28)) == [date(2024, 2, 28), date(2024, 2, 29)]
    assert ends_with_deadline(date(2026, 3, 31)) == [date(2025, 3, 31)]


@pytest.mark.parametrize(
    ("rule", "end", "deadline"),
    [
        pytest.param(DisputeFacts.SICK_PAY, None, None, id="pay-while-still-employed-does-not-run"),
        pytest.param(DisputeFacts.OVERTIME, date(2025, 9, 30), date(2026, 9, 30), id="pay-a-year-from-the-end"),
        pytest.param(DisputeFacts.DISMISSAL, date(2025, 1, 10), date(2026, 1, 10), id="dismissal-a-year-from-it"),
    ],
)
def test_it_works_the_limit_out_from_the_intake(rule: str, end: date | None, deadline: date | None) -> None:
    intake = LegalIntake(employment_start=date(2019, 3, 1), employment_end=end)

    limitation = arbitration_limitation(intake, rule)

    assert limitation is not None and limitation.deadline == deadline


def test_it_says_nothing_for_a_dispute_with_no_date_to_count_from() -> None:
    assert arbitration_limitation(LegalIntake(employment_start=date(2019, 3, 1)), None) is None
    assert arbitration_limitation(LegalIntake(employment_start=date(2019, 3, 1)), DisputeFacts.DISMISSAL) is None


def test_it_shows_the_worker_and_the_lawyer_the_deadline_from_the_end_of_the_job(
    open_case: Callable[..., Case], alice: User, lawyer: Professional, login: Callable[..., Client]
) -> None:
    case = open_case(employment_end="2025-09-30")
    case = consult_services.case_accept(case=case, professional=lawyer)

    for who in (alice, lawyer.user):
        page = body(login(who, "en").get(reverse("case_detail", args=[case.reference])))
        assert "Time limit to apply for labour arbitration" in page
        assert "By Sept. 30, 2026" in page and FROM_THE_END in page
    # The lawyer's outcome form starts from it: confirmed, not typed.
    lawyers = login(lawyer.user, "en").get(reverse("case_detail", args=[case.reference]))
    assert lawyers.context["outcome_form"].initial["arbitration_deadline"] == date(2026, 9, 30)


def test_it_tells_a_worker_still_employed_that_the_limit_for_pay_does_not_run(
    open_case: Callable[..., Case], alice: User, login: Callable[..., Client]
) -> None:
    case = open_case()

    page = body(login(alice, "zh-hans").get(reverse("case_detail", args=[case.reference])))

    assert "申请劳动仲裁的时效" in page and "在职期间" in page


def test_it_shows_the_lawyers_own_deadline_instead_once_typed(
    open_case: Callable[..., Case], alice: User, lawyer: Professional, login: Callable[..., Client]
) -> None:
    case = consult_services.case_accept(case=open_case(employment_end="2025-09-30"), professional=lawyer)
    MediationOutcome.objects.create(case=case, result=Result.NOT_SETTLED, arbitration_deadline=date(2026, 8, 1))

    page = body(login(alice, "en").get(reverse("case_detail", args=[case.reference])))

    assert "By Sept. 30, 2026" not in page and "Aug. 1, 2026" in page


@pytest.mark.parametrize("days", [30, 7])
def test_it_warns_the_lawyer_before_the_limit_worked_out_from_the_intake(
    days: int, open_case: Callable[..., Case], lawyer: Professional, sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from notices.reminders import date_reminders

    deadline = timezone.localdate() + timedelta(days=days)
    end = ends_with_deadline(deadline)[0]
    case = consult_services.case_accept(case=open_case(employment_end=end.isoformat()), professional=lawyer)
    not_yet = consult_services.case_accept(
        case=open_case(employment_end=(end - timedelta(days=1)).isoformat(), employer_name="另一家厂"),
        professional=lawyer,
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert date_reminders() == 1
        assert date_reminders() == 0

    [notice] = Notice.objects.filter(kind=NoticeKind.ARBITRATION_DEADLINE)
    assert (notice.case_id, notice.user_id, notice.params["days"]) == (case.pk, lawyer.user_id, str(days))
    assert not Notice.objects.filter(case=not_yet, kind=NoticeKind.ARBITRATION_DEADLINE).exists()


def test_it_does_not_warn_about_a_dispute_already_settled(
    open_case: Callable[..., Case], lawyer: Professional, sms_outbox: list[Any]
) -> None:
    from notices.reminders import date_reminders

    end = ends_with_deadline(timezone.localdate() + timedelta(days=30))[0]
    case = consult_services.case_accept(case=open_case(employment_end=end.isoformat()), professional=lawyer)
    MediationOutcome.objects.create(case=case, result=Result.SETTLED)

    assert date_reminders() == 0



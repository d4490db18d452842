"""What is sent, to whom, when: the notices a case's changes cause, and the chat's notice to a
participant away from the room."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services
from consult.models import Case, Priority, Professional, Skill, Status, User
from consult.services import messages as chat
from notices.kinds import NoticeKind
from notices.links import case_token
from notices.models import Notice, NoticeStatus
from notices.reminders import claims_notify, failed_notify, overdue_notify

pytestmark = pytest.mark.django_db


def sms_to(outbox: list[Any], user: User) -> list[Any]:
    return [m for m in outbox if m.phone == user.phone]


def kinds_to(user: User) -> list[str]:
    return list(Notice.objects.filter(user=user).order_by("id").values_list("kind", flat=True))


def test_the_doctor_hears_of_a_case_assigned_to_them_after_commit(
    alice: User, doctor: Professional, respiratory: Skill, sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    [sms] = sms_to(sms_outbox, doctor.user)
    assert sms.kind == NoticeKind.CASE_ASSIGNED
    assert sms.params["case"] == case.reference and sms.params["service"] == "呼吸科"
    assert sms.params["link"].endswith(f"/n/{case_token(case.pk)}/")
    assert sms_to(sms_outbox, alice) == []  # nothing to tell her yet: she just did it


def test_the_resident_hears_who_accepted_and_by_when_to_expect_an_answer(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        accepted = services.case_accept(case=case, professional=doctor)
    [sms] = sms_to(sms_outbox, alice)
    assert sms.kind == NoticeKind.CASE_ACCEPTED
    assert accepted.accepted_at is not None
    answer_by = timezone.localtime(accepted.accepted_at + timedelta(hours=24))
    assert sms.params["professional"] == "王芳"
    assert sms.params["by"] == f"{answer_by.month}月{answer_by.day}日 {answer_by:%H:%M}"
    assert sms.text.startswith(f"您的案件{case.reference}已由王芳受理")


def test_the_resident_hears_when_the_case_goes_back_to_the_queue(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.case_decline(case=case, professional=doctor, reason="不在我的专长内")
    assert [m.kind for m in sms_to(sms_outbox, alice)] == [NoticeKind.CASE_RETURNED]


def test_the_resident_hears_of_resolution_and_closing_with_the_rating_link_and_no_separate_summary_sms(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.medical.conftest import write_note

    with django_capture_on_commit_callbacks(execute=True):
        services.case_accept(case=case, professional=doctor)
        write_note(case, doctor)
        services.case_resolve(case=case, professional=doctor)
        services.case_close(case=case, user=doctor.user)  # prints the summary too
    assert [m.kind for m in sms_to(sms_outbox, alice)] == [
        NoticeKind.CASE_ACCEPTED, NoticeKind.CASE_RESOLVED, NoticeKind.CASE_CLOSED
    ]
    assert "请为本次服务评价" in sms_to(sms_outbox, alice)[-1].text
    # A summary asked for again later is news of its own.
    with django_capture_on_commit_callbacks(execute=True):
        Notice.objects.filter(kind=NoticeKind.CASE_CLOSED).update(created_at=timezone.now() - timedelta(hours=1))
        services.summary_generate(case=Case.objects.get(pk=case.pk), actor=doctor.user)
    assert sms_to(sms_outbox, alice)[-1].kind == NoticeKind.SUMMARY_READY


def test_a_claimed_case_is_told_to_the_resident_at_once_and_only_once(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    assert case.status == Status.WAITING  # nobody on duty
    claimer = professional_factory([respiratory], name="赵医生")

    with django_capture_on_commit_callbacks(execute=True):
        claimed = services.case_claim_next(professional=claimer)

    assert claimed is not None and claimed.pk == case.pk
    # Sent with the claim's commit, no minute job needed; the job finds nothing owed after it.
    [sms] = sms_to(sms_outbox, alice)
    assert (sms.kind, sms.params["professional"]) == (NoticeKind.CASE_ACCEPTED, "赵医生")
    with django_capture_on_commit_callbacks(execute=True):
        assert claims_notify() == 0
    assert len(sms_to(sms_outbox, alice)) == 1


def test_a_case_taken_from_the_line_again_is_news_again(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], coordinator: User,
    sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    first = professional_factory([respiratory], name="赵医生")
    with django_capture_on_commit_callbacks(execute=True):
        services.case_claim_next(professional=first)
    # Given to a second doctor, who declines: back in the line with nobody on duty to match it.
    second = professional_factory([respiratory], name="孙医生", on_duty=False)
    Professional.objects.filter(pk=first.pk).update(on_duty=False)
    services.case_reassign(case=Case.objects.get(pk=case.pk), coordinator=coordinator, professional=second)
    services.case_decline(case=Case.objects.get(pk=case.pk), professional=second)
    assert Case.objects.get(pk=case.pk).status == Status.WAITING
    third = professional_factory([respiratory], name="周医生")

    with django_capture_on_commit_callbacks(execute=True):
        services.case_claim_next(professional=third)

    told = [sms.params["professional"] for sms in sms_to(sms_outbox, alice) if sms.kind == NoticeKind.CASE_ACCEPTED]
    assert told == ["赵医生", "周医生"]
    assert claims_notify() == 0


def test_the_minute_job_tells_the_resident_of_a_claim_whose_process_died_before_its_notice(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    claimer = professional_factory([respiratory], name="赵医生")
    services.case_claim_next(professional=claimer)
    # On PostgreSQL the notice is written by a job queued after the claim's statement: a process
    # that dies in between leaves the claim without it.
    Notice.objects.filter(case=case, kind=NoticeKind.CASE_ACCEPTED).delete()

    with django_capture_on_commit_callbacks(execute=True):
        assert claims_notify() == 1
        assert claims_notify() == 0

    [sms] = sms_to(sms_outbox, alice)
    assert (sms.kind, sms.params["case"]) == (NoticeKind.CASE_ACCEPTED, case.reference)


def test_a_claim_stands_when_its_notice_cannot_be_queued_and_the_minute_job_writes_it(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], sms_outbox: list[Any],
    monkeypatch: pytest.MonkeyPatch, is_postgres: bool, django_capture_on_commit_callbacks: Any,
) -> None:
    """PostgreSQL's claim queues its notice as a job: a broker that refuses it costs the resident a
    minute's wait, never the claim."""
    if not is_postgres:
        pytest.skip("the portable claim writes its notice in its own transaction")
    from kombu.exceptions import OperationalError

    from notices import tasks

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    claimer = professional_factory([respiratory], name="赵医生")
    monkeypatch.setattr(tasks.claims_notify, "apply_async", broker_down)

    claimed = services.case_claim_next(professional=claimer)

    assert claimed is not None and Case.objects.get(pk=case.pk).status == Status.ACTIVE
    assert not Notice.objects.filter(case=case).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert claims_notify() == 1
    [sms] = sms_to(sms_outbox, alice)
    assert (sms.kind, sms.params["professional"]) == (NoticeKind.CASE_ACCEPTED, "赵医生")


def test_many_claims_in_a_second_queue_two_jobs_and_every_resident_is_told(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], sms_outbox: list[Any],
    monkeypatch: pytest.MonkeyPatch, is_postgres: bool, django_capture_on_commit_callbacks: Any, settings: Any,
) -> None:
    """One job per claim cost a claim more than the claim itself: the first claim of a window
    queues the job at once, the rest one job for the window's end."""
    if not is_postgres:
        pytest.skip("the portable claim writes its notice in its own transaction")
    from notices import tasks

    settings.CLAIM_NOTICE_BATCH_SECONDS = 60  # every claim below falls in the first one's window
    cases = [
        services.case_submit(resident=alice, skill=respiratory, description=f"咳嗽 {n}", priority=Priority.NORMAL)
        for n in range(5)
    ]
    claimer = professional_factory([respiratory], name="赵医生")
    queued: list[float | None] = []
    monkeypatch.setattr(tasks.claims_notify, "apply_async", lambda args, countdown=None: queued.append(countdown))

    claimed = [services.case_claim_next(professional=claimer) for _ in cases]

    assert {c.pk for c in claimed if c is not None} == {c.pk for c in cases}
    # At once for the first; after the window, with its margin, for the four others.
    assert len(queued) == 2 and queued[0] is None
    assert queued[1] is not None and 60 < queued[1] <= 60 + tasks.CLOCK_MARGIN
    # That job tells every resident, once.
    with django_capture_on_commit_callbacks(execute=True):
        assert claims_notify() == 5
        assert claims_notify() == 0
    assert sorted(sms.params["case"] for sms in sms_to(sms_outbox, alice)) == sorted(c.reference for c in cases)


def test_a_case_waiting_past_its_promise_is_told_once_to_its_professionals_and_the_coordinators(
    alice: User, respiratory: Skill, professional_factory: Callable[..., Professional], coordinator: User,
    sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="咳嗽", priority=Priority.NORMAL)
    fresh = services.case_submit(resident=alice, skill=respiratory, description="发烧", priority=Priority.NORMAL)
    Case.objects.filter(pk=case.pk).update(submitted_at=timezone.now() - timedelta(hours=25))  # promise: 24 h
    busy = professional_factory([respiratory], name="钱医生")  # on duty now, the queue still waiting
    off = professional_factory([respiratory], name="孙医生", on_duty=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert overdue_notify() == 1
        assert overdue_notify() == 0
    [told] = sms_to(sms_outbox, busy.user)
    assert (told.kind, told.params["case"], told.params["hours"]) == (NoticeKind.CASE_OVERDUE, case.reference, "24")
    assert sms_to(sms_outbox, off.user) == []
    [summary] = sms_to(sms_outbox, coordinator)
    assert (summary.kind, summary.params["count"]) == (NoticeKind.CASES_OVERDUE, "1")
    assert not Notice.objects.filter(case=fresh, kind=NoticeKind.CASE_OVERDUE).exists()


def test_coordinators_hear_of_failed_notices_once(
    coordinator: User, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from notices.services import notify

    notice = notify(phone="13900000001", kind=NoticeKind.VERIFICATION_CODE, params={"code": "1"})
    Notice.objects.filter(pk=notice.pk).update(status=NoticeStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert failed_notify() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert failed_notify() == 0
    assert [(m.kind, m.params["count"]) for m in sms_to(sms_outbox, coordinator)] == [(NoticeKind.NOTICES_FAILED, "1")]


def test_home_visit_booked_then_moved(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    from medical.services import home_visit_request, home_visit_schedule

    services.case_accept(case=case, professional=doctor)
    visit = home_visit_request(case=case, resident=alice, address="村东头", preferred_dates="周三上午")
    when = timezone.now() + timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=when)
        home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=when + timedelta(hours=3))
    kinds = [m.kind for m in sms_to(sms_outbox, alice)]
    assert kinds == [NoticeKind.VISIT_SCHEDULED, NoticeKind.VISIT_CHANGED]


@pytest.mark.django_db(transaction=True)
def test_a_chat_message_to_an_absent_resident_sends_exactly_one_sms_after_commit(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any]
) -> None:
    services.case_accept(case=case, professional=doctor)
    sms_outbox.clear()
    for n in range(3):
        message, _new = chat.message_post(case=case, sender=doctor.user, body=f"请描述症状{n}", client_id=f"m{n}")
        chat.offline_notice_enqueue(message=message)  # what the chat does once the message is stored
    [sms] = sms_to(sms_outbox, alice)
    assert sms.kind == NoticeKind.NEW_MESSAGE
    assert sms.text == f"您的案件{case.reference}有新消息：{sms.params['link']}"
    assert sms_to(sms_outbox, doctor.user) == []  # the sender is not told of their own message


@pytest.mark.django_db(transaction=True)
def test_a_chat_notice_written_in_a_transaction_that_rolls_back_is_never_sent(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any]
) -> None:
    services.case_accept(case=case, professional=doctor)
    sms_outbox.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        message, _new = chat.message_post(case=case, sender=doctor.user, body="请描述症状", client_id="rb")
        assert chat.notify_offline(message=message) == 1
        raise RuntimeError("the request failed after all")
    assert sms_outbox == []
    assert not Notice.objects.filter(kind=NoticeKind.NEW_MESSAGE).exists()


def test_the_short_link_opens_the_case_after_login(
    case: Case, alice: User, bob: User, login: Callable[..., Client]
) -> None:
    path = reverse("notice_link", args=[case_token(case.pk)])
    assert len(path) <= 20
    anonymous = Client().get(path, follow=True)
    assert anonymous.redirect_chain[-1][0].startswith(reverse("login"))
    assert login(alice).get(path)["Location"] == reverse("case_detail", args=[case.reference])
    assert login(bob).get(path, follow=True).status_code == 404  # the case page still checks who may see it
    tampered = case_token(case.pk)[:-1] + ("A" if case_token(case.pk)[-1] != "A" else "B")
    assert login(alice).get(reverse("notice_link", args=[tampered])).status_code == 404


def test_staff_see_the_notices_on_the_case_page_and_residents_do_not(
    case: Case, alice: User, doctor: Professional, coordinator: User, login: Callable[..., Client],
) -> None:
    services.case_accept(case=case, professional=doctor)
    detail = reverse("case_detail", args=[case.reference])
    page = login(doctor.user, language="en").get(detail).text
    assert 'id="notices"' in page and "case accepted" in page and "王秀英" in page
    assert 'id="notices"' not in login(alice).get(detail).text


def test_the_dashboard_lists_failed_notices(coordinator: User, login: Callable[..., Client]) -> None:
    from notices.services import notify

    notice = notify(phone="13900000001", kind=NoticeKind.VERIFICATION_CODE, params={"code": "1"})
    Notice.objects.filter(pk=notice.pk).update(status=NoticeStatus.FAILED, error="Tencent Cloud: LimitExceeded")
    page = login(coordinator, language="en").get(reverse("dashboard")).text
    assert "1 notice failed after its tries or may not have arrived." in page
    assert "Tencent Cloud: LimitExceeded" in page
    assert "1条通知多次尝试后失败或可能未送达。" in login(coordinator).get(reverse("dashboard")).text


def test_a_resident_chooses_email_or_opts_out_on_a_translated_page(
    alice: User, login: Callable[..., Client], sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    from notices.services import notify

    client = login(alice)
    url = reverse("notice_preferences")
    assert "通知设置" in client.get(url).text
    refused = client.post(url, {"channel": "email", "email": ""})
    assert "如需通过邮件接收通知，请填写邮箱地址。" in refused.text
    assert client.post(url, {"channel": "sms", "opted_out": "on"}).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        skipped = notify(user=alice, kind=NoticeKind.SUMMARY_READY, params={"case": "C", "link": "x"})
    assert skipped.status == NoticeStatus.SKIPPED and sms_outbox == []


def test_a_home_visit_is_reminded_the_day_before_once_per_booking(
    case: Case, alice: User, doctor: Professional, sms_outbox: list[Any], django_capture_on_commit_callbacks: Any,
) -> None:
    from medical.services import home_visit_request, home_visit_schedule
    from notices.reminders import visit_reminders

    services.case_accept(case=case, professional=doctor)
    visit = home_visit_request(case=case, resident=alice, address="村东头", preferred_dates="后天上午")
    tomorrow_9 = timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), time(9)))
    home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=tomorrow_9 + timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert visit_reminders() == 0  # the day after tomorrow: not yet
        home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=tomorrow_9)
        assert visit_reminders() == 1
        assert visit_reminders() == 0
    reminders = [m for m in sms_to(sms_outbox, alice) if m.kind == NoticeKind.VISIT_REMINDER]
    assert [m.params["when"] for m in reminders] == [f"{tomorrow_9.month}月{tomorrow_9.day}日 09:00"]


def test_dates_the_cases_keep_are_reminded_once(
    case: Case, alice: User, doctor: Professional, lawyer: Professional, sick_pay: Skill, sms_outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from decimal import Decimal

    from legal.models import MediationOutcome, Result
    from notices.reminders import date_reminders
    from tests.medical.conftest import write_note

    today = timezone.localdate()
    services.case_accept(case=case, professional=doctor)
    write_note(case, doctor, follow_up_date=today + timedelta(days=1))
    dispute = services.case_submit(resident=alice, skill=sick_pay, description="病假工资被扣", priority=Priority.NORMAL)
    assert dispute.assignee_id == lawyer.pk
    MediationOutcome.objects.create(
        case=dispute, result=Result.PARTLY, amount_agreed=Decimal("3000.00"), amount_received=Decimal("1000.00"),
        payment_due=today + timedelta(days=1), arbitration_deadline=today + timedelta(days=30),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert date_reminders() == 3
        assert date_reminders() == 0
    assert [m.kind for m in sms_to(sms_outbox, alice)] == [NoticeKind.FOLLOW_UP_DUE]
    told = {m.kind: m.params for m in sms_to(sms_outbox, lawyer.user)}
    assert set(told) == {NoticeKind.PAYMENT_DUE, NoticeKind.ARBITRATION_DEADLINE}
    assert told[NoticeKind.ARBITRATION_DEADLINE]["days"] == "30"
    # Paid in full: no payment reminder for another case due the same day.
    MediationOutcome.objects.filter(case=dispute).update(amount_received=Decimal("3000.00"))
    Notice.objects.filter(kind=NoticeKind.PAYMENT_DUE).delete()
    assert date_reminders() == 0

"""The case page around its conversation: the promised time at the top, withdrawing with an undo
window, a rating that can be skipped, the chat's read marks and timestamps as a reload shows them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from consult import selectors, services
from consult.errors import InvalidTransition, NotAllowed, WrongState
from consult.models import Case, Professional, Rating, Skill, Status, User, Verb
from consult.services.messages import message_post, read_mark


def zh(message: str, context: str = "") -> str:
    with translation.override("zh-hans"):
        return translation.pgettext(context, message) if context else translation.gettext(message)


def page(client: Client, case: Case) -> str:
    response = client.get(reverse("case_detail", args=[case.reference]))
    assert response.status_code == 200
    return response.content.decode()


# --- the promised time -----------------------------------------------------------------------


def test_it_promises_an_answer_counted_from_when_the_case_was_assigned(case: Case, respiratory: Skill) -> None:
    assert case.status == Status.ASSIGNED and case.assigned_at is not None
    assert selectors.promised_by(case) == case.assigned_at + timedelta(hours=respiratory.response_hours)


def test_it_promises_a_waiting_case_an_answer_counted_from_when_it_was_sent(
    alice: User, respiratory: Skill
) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="头晕。")
    assert case.status == Status.WAITING and case.submitted_at is not None
    assert selectors.promised_by(case) == case.submitted_at + timedelta(hours=24)


def test_it_promises_nothing_once_the_case_is_finished(case: Case, alice: User) -> None:
    services.case_withdraw(case=case, resident=alice)
    case.refresh_from_db()
    assert selectors.promised_by(case) is None


def test_it_shows_the_resident_who_answers_and_by_when(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    assert case.assigned_at is not None
    local = timezone.localtime(case.assigned_at + timedelta(hours=24))
    body = page(login(alice), case)
    assert f"王芳医生预计在 {local.month}月{local.day}日 {local:%H:%M} 前答复" in body
    english = page(login(alice, "en"), case)
    assert f"Dr 王芳 expects to answer by {local:%b} {local.day}, {local:%H:%M}." in english


# --- withdraw and undo -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.ASSIGNED, Status.ACTIVE])
def test_it_gives_a_reopened_case_back_to_the_professional_who_had_it(
    case: Case, alice: User, doctor: Professional, status: str
) -> None:
    if status == Status.ACTIVE:
        case = services.case_accept(case=case, professional=doctor)
    services.case_withdraw(case=case, resident=alice, reason="按错了")

    services.case_reopen(case=case, resident=alice)

    row = Case.objects.get(pk=case.pk)
    assert (row.status, row.assignee_id, row.withdrawn_at) == (status, doctor.pk, None)
    verbs = list(row.events.values_list("verb", flat=True))
    # Honest: the withdrawal stays on the record, followed by the undo.
    assert verbs[-2:] == [Verb.WITHDRAWN, Verb.REOPENED]
    assert row.messages.filter(detail__verb=Verb.REOPENED).exists()


def test_it_matches_a_reopened_case_that_was_waiting(alice: User, respiratory: Skill) -> None:
    case = services.case_submit(resident=alice, skill=respiratory, description="头晕。")
    services.case_withdraw(case=case, resident=alice)

    services.case_reopen(case=case, resident=alice)

    assert Case.objects.get(pk=case.pk).status == Status.WAITING
    assert selectors.queue_place(Case.objects.get(pk=case.pk)) == 1


def test_it_refuses_to_reopen_after_the_undo_window(case: Case, alice: User, settings: Any) -> None:
    services.case_withdraw(case=case, resident=alice)
    late = timezone.now() - timedelta(minutes=settings.CASE_REOPEN_MINUTES, seconds=1)
    Case.objects.filter(pk=case.pk).update(withdrawn_at=late)

    with pytest.raises(WrongState):
        services.case_reopen(case=case, resident=alice)

    assert Case.objects.get(pk=case.pk).status == Status.WITHDRAWN


def test_it_lets_only_the_owner_reopen(case: Case, alice: User, bob: User) -> None:
    services.case_withdraw(case=case, resident=alice)
    with pytest.raises(NotAllowed):
        services.case_reopen(case=case, resident=bob)
    assert Case.objects.get(pk=case.pk).status == Status.WITHDRAWN


def test_it_refuses_to_reopen_a_case_that_is_not_withdrawn(case: Case, alice: User) -> None:
    with pytest.raises(WrongState):
        services.case_reopen(case=case, resident=alice)


def test_it_withdraws_only_after_a_confirmation_and_offers_the_undo(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice)
    body = page(client, case)
    # The withdraw button is inside a step that says what happens; no form posts on one tap.
    assert zh("Yes, withdraw my case") in body
    assert body.index('id="withdraw"') < body.index(reverse("case_action", args=[case.reference, "withdraw"]))

    response = client.post(reverse("case_action", args=[case.reference, "withdraw"]), follow=True)
    body = response.content.decode()
    assert zh("Undo: reopen my case") in body
    assert Case.objects.get(pk=case.pk).status == Status.WITHDRAWN

    client.post(reverse("case_action", args=[case.reference, "reopen"]))
    assert Case.objects.get(pk=case.pk).status == Status.ASSIGNED


def test_it_offers_no_undo_once_the_window_has_passed(
    case: Case, alice: User, login: Callable[..., Client], settings: Any
) -> None:
    services.case_withdraw(case=case, resident=alice)
    late = timezone.now() - timedelta(minutes=settings.CASE_REOPEN_MINUTES + 1)
    Case.objects.filter(pk=case.pk).update(withdrawn_at=late)
    assert zh("Undo: reopen my case") not in page(login(alice), case)


# --- rating and the action bar on a closed case ----------------------------------------------


def closed(case: Case, doctor: Professional) -> Case:
    Case.objects.filter(pk=case.pk).update(status=Status.CLOSED, closed_at=timezone.now())
    case.refresh_from_db()
    return case


def test_it_lets_a_rating_be_skipped_without_stars(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    case = closed(case, doctor)
    client = login(alice)
    body = page(client, case)
    # The stars are `required`: the skip button must not be held back by the browser's check.
    assert 'name="skip" value="1" class="secondary" formnovalidate' in body

    client.post(reverse("rate", args=[case.reference]), {"skip": "1"})

    assert Rating.objects.get(case=case).score is None


def test_it_shows_no_empty_box_of_actions_on_a_closed_case(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    body = page(login(alice), closed(case, doctor))
    assert zh("What you can do") not in body
    assert zh("Withdraw my case") not in body


# --- the chat ----------------------------------------------------------------------------


def test_it_shows_the_others_read_marks_after_a_reload(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    first, _ = message_post(case=case, sender=alice, body="第一条", client_id="a1")
    second, _ = message_post(case=case, sender=alice, body="第二条", client_id="a2")
    read_mark(case=case, user=doctor.user, seq=first.seq)
    # Her own reading does not make her messages read.
    read_mark(case=case, user=alice, seq=second.seq)

    assert selectors.chat_read_seq(case=case, user=alice) == first.seq
    body = page(login(alice), case)
    read, sent = zh("read"), zh("sent")
    assert f'data-seq="{first.seq}"' in body
    first_li = body[body.index(f'data-seq="{first.seq}" data-client-id'):]
    assert f'<span class="receipt">{read}</span>' in first_li[: first_li.index("</li>")]
    second_li = body[body.index(f'data-seq="{second.seq}" data-client-id'):]
    assert f'<span class="receipt">{sent}</span>' in second_li[: second_li.index("</li>")]


def test_it_dates_each_message_in_beijing_time_and_sends_with_a_send_button(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    message, _ = message_post(case=case, sender=alice, body="你好", client_id="t1")
    local = timezone.localtime(message.created_at)
    body = page(login(alice), case)
    assert f"{local.month}月{local.day}日 {local:%H:%M}</time>" in body
    assert f'<button type="submit">{zh("Send", "chat")}</button>' in body
    assert zh("Send", "chat") == "发送"
    assert 'accept="image/*" capture="environment"' in body


def test_it_puts_the_chat_before_the_case_details_and_the_documents(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    body = page(login(alice), case)
    assert body.index('id="chat"') < body.index('id="case-details"') < body.index('id="documents"')


# --- details editable while the case is open ---------------------------------------------------


def test_it_lets_the_resident_change_the_details_while_the_case_is_open(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice)
    assert zh("Change or add to the details") in page(client, case)

    client.post(reverse("case_details_edit", args=[case.reference]), {"description": "咳嗽两周，昨天开始发烧。"})

    row = Case.objects.get(pk=case.pk)
    assert row.description == "咳嗽两周，昨天开始发烧。"
    last = row.events.last()
    assert last is not None and last.verb == Verb.DETAILS_EDITED
    assert row.messages.filter(detail__verb=Verb.DETAILS_EDITED).exists()


def test_it_refuses_details_from_anyone_but_the_resident(case: Case, bob: User, doctor: Professional) -> None:
    for outsider in (bob, doctor.user):
        with pytest.raises(NotAllowed):
            services.case_details_edit(case=case, resident=outsider, description="改掉")
    assert Case.objects.get(pk=case.pk).description == "咳嗽两周，夜里加重。"


def test_it_refuses_details_once_the_case_is_finished(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    services.case_withdraw(case=case, resident=alice)
    with pytest.raises(WrongState):
        services.case_details_edit(case=case, resident=alice, description="改掉")
    assert zh("Change or add to the details") not in page(login(alice), case)


def test_it_answers_an_outsider_posting_details_with_not_found(
    case: Case, bob: User, login: Callable[..., Client]
) -> None:
    response = login(bob).post(reverse("case_details_edit", args=[case.reference]), {"description": "改掉"})
    assert response.status_code == 404
    assert Case.objects.get(pk=case.pk).description == "咳嗽两周，夜里加重。"


@pytest.mark.parametrize("status", [Status.WAITING, Status.ASSIGNED, Status.ACTIVE])
def test_it_lets_no_step_but_the_reopen_take_a_case_out_of_withdrawn(
    case: Case, alice: User, coordinator: User, status: str
) -> None:
    services.case_withdraw(case=case, resident=alice)
    case.refresh_from_db()
    with pytest.raises(InvalidTransition):
        services._transition(case, status, actor=coordinator, verb=Verb.ACCEPTED)
    assert Case.objects.get(pk=case.pk).status == Status.WITHDRAWN


def test_it_refuses_the_doctor_accepting_a_withdrawn_case(case: Case, alice: User, doctor: Professional) -> None:
    services.case_withdraw(case=case, resident=alice)
    with pytest.raises(InvalidTransition):
        services.case_accept(case=case, professional=doctor)
    assert Case.objects.get(pk=case.pk).status == Status.WITHDRAWN


def test_it_offers_no_undo_of_a_withdrawal_that_came_with_an_erasure_request(case: Case, alice: User) -> None:
    from privacy.services import erasure_request

    erasure_request(case=case, resident=alice, reason="")
    case.refresh_from_db()
    assert case.status == Status.WITHDRAWN
    assert services.reopen_deadline(case) is None
    with pytest.raises(WrongState):
        services.case_reopen(case=case, resident=alice)

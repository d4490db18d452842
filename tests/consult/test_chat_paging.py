"""The case page's chat comes paged: the newest messages with the page, earlier ones on demand
through the same access check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from consult.models import Case, Message, Professional, User
from consult.selectors import CHAT_PAGE


def write(case: Case, count: int, resident: User, professional: User) -> None:
    """`count` messages numbered from 1 (instead of the status lines so far), the resident writing
    the odd ones."""
    Message.objects.filter(case=case).delete()
    Message.objects.bulk_create(
        Message(case=case, seq=n, sender=resident if n % 2 else professional, body=f"第{n}条消息")
        for n in range(1, count + 1)
    )
    Case.objects.filter(pk=case.pk).update(last_seq=count)


def shown(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<li class="[a-z]+" data-seq="(\d+)"', html)]


def history(client: Client, case: Case, before: Any = None) -> Any:
    query = {} if before is None else {"before": before}
    return client.get(reverse("chat_history", args=[case.reference]), query, HTTP_ACCEPT="application/json")


def test_it_shows_only_the_newest_messages_on_the_case_page_with_a_button_for_earlier_ones(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    write(case, CHAT_PAGE + 30, alice, doctor.user)

    page = login(alice).get(reverse("case_detail", args=[case.reference]))

    html = page.content.decode()
    assert shown(html) == list(range(31, CHAT_PAGE + 31))
    assert "第30条消息" not in html and f"第{CHAT_PAGE + 30}条消息" in html
    button = re.search(r'<button type="button" id="chat-earlier"[^>]*>', html)
    assert button is not None
    assert 'data-before="31"' in button.group(0) and " hidden" not in button.group(0)
    assert reverse("chat_history", args=[case.reference]) in button.group(0)


def test_it_shows_every_message_and_no_button_when_they_fit_on_one_page(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    write(case, CHAT_PAGE, alice, doctor.user)

    html = login(doctor.user).get(reverse("case_detail", args=[case.reference])).content.decode()

    assert shown(html) == list(range(1, CHAT_PAGE + 1))
    button = re.search(r'<button type="button" id="chat-earlier"[^>]*>', html)
    assert button is not None and " hidden" in button.group(0)


def test_it_gives_the_earlier_messages_a_page_at_a_time_in_order_as_the_page_renders_them(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    write(case, 2 * CHAT_PAGE + 20, alice, doctor.user)
    client = login(alice)

    first = history(client, case, before=CHAT_PAGE + 21)
    second = history(client, case, before=json.loads(first.content)["before"])

    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    page = json.loads(first.content)
    assert shown(page["html"]) == list(range(21, CHAT_PAGE + 21))
    assert (page["before"], page["more"]) == (21, True)
    # Hers on the right, the doctor's on the left, as on the page.
    assert '<li class="mine" data-seq="21"' in page["html"] and '<li class="theirs" data-seq="22"' in page["html"]
    last = json.loads(second.content)
    assert shown(last["html"]) == list(range(1, 21))
    assert (last["before"], last["more"]) == (1, False)


def test_it_gives_the_newest_page_without_a_number_and_nothing_before_the_first(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    write(case, CHAT_PAGE + 5, alice, doctor.user)
    client = login(doctor.user)

    newest = json.loads(history(client, case).content)
    none = json.loads(history(client, case, before=1).content)

    assert shown(newest["html"]) == list(range(6, CHAT_PAGE + 6)) and newest["more"] is True
    assert (shown(none["html"]), none["before"], none["more"]) == ([], None, False)


@pytest.mark.parametrize("before", ["abc", "0", "-3", "1.5", "99999999999"])
def test_it_refuses_a_page_number_that_is_not_a_positive_whole_number_with_a_clear_error(
    before: str, case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    write(case, 3, alice, doctor.user)

    response = history(login(alice, language="en"), case, before=before)

    assert response.status_code == 400
    assert json.loads(response.content)["error"].startswith("Could not load earlier messages")


@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer"])
def test_it_answers_an_outsider_404_as_for_a_missing_case(
    who: str, request: pytest.FixtureRequest, case: Case, alice: User, doctor: Professional,
    login: Callable[..., Client],
) -> None:
    write(case, 5, alice, doctor.user)
    person = request.getfixturevalue(who)
    client = login(person if isinstance(person, User) else person.user)

    refused = history(client, case, before=3)
    missing = client.get(reverse("chat_history", args=["ZZZZZZZZ"]), {"before": 3})

    assert refused.status_code == 404
    assert "第1条消息" not in refused.content.decode()
    assert (missing.status_code, missing.content) == (404, refused.content)


def test_it_sends_an_anonymous_visitor_to_the_login_page(case: Case, login: Callable[..., Client]) -> None:
    response = history(login(None), case, before=3)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lets_the_coordinator_page_back_through_any_case(
    case: Case, alice: User, doctor: Professional, coordinator: User, login: Callable[..., Client]
) -> None:
    write(case, CHAT_PAGE + 2, alice, doctor.user)

    page = json.loads(history(login(coordinator), case, before=3).content)

    assert shown(page["html"]) == [1, 2]


def test_it_renders_a_case_with_a_thousand_messages_and_its_history_in_a_bounded_number_of_queries(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client],
    django_assert_max_num_queries: Any,
) -> None:
    write(case, 1_000, alice, doctor.user)
    client = login(alice)

    # As without messages: one statement for the chat, whatever its length.
    with django_assert_max_num_queries(11):
        page = client.get(reverse("case_detail", args=[case.reference]))
    # session, user, case, messages
    with django_assert_max_num_queries(4):
        earlier = history(client, case, before=951)

    assert len(shown(page.content.decode())) == CHAT_PAGE
    assert len(shown(json.loads(earlier.content)["html"])) == CHAT_PAGE

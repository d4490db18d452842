"""Tracking a case without an account, and the receipt whose QR code leads there.

Alice's phone is 13800000001 (last 4: 0001), Bob's 13800000002 (0002).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import services
from consult.models import Case, Document, Priority, Professional, Skill, Status, User
from tests.consult.qr import decode_svg

TRACK = "/track/"
SECRET_DESCRIPTION = "咳嗽两周，夜里加重。"  # the `case` fixture's description
DOCUMENT_NAME = "胸片报告-王秀英.pdf"
QR_SVG = r'<div class="qr">\s*(<svg.*?</svg>)\s*</div>'
TOO_MANY = "Too many tries. %(wait)s"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    # The attempt counter lives in the cache: each test starts with a clean slate.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def bobs_case(bob: User, respiratory: Skill, doctor: Professional) -> Case:
    return services.case_submit(resident=bob, skill=respiratory, description="头晕。", priority=Priority.NORMAL)


@pytest.fixture
def visitor(login: Callable[..., Client]) -> Client:
    client: Client = login(None, "en")
    return client


def track(client: Client, reference: str, last4: str, address: str = "203.0.113.7") -> Any:
    return client.post(TRACK, {"reference": reference, "phone_last4": last4}, REMOTE_ADDR=address)


def result_block(response: Any) -> str:
    """The part of the page that answers the lookup (the form above it echoes what was typed)."""
    match = re.search(r'<(section|p)[^>]*id="track-result".*?</\1>', response.content.decode(), re.S)
    assert match, "the page has no answer block"
    return match.group(0)


def _t(message: str) -> str:
    with translation.override("en"):
        return translation.gettext(message)


def test_it_shows_the_status_of_a_case_for_its_reference_and_the_last_4_phone_digits(
    case: Case, visitor: Client
) -> None:
    response = track(visitor, case.reference, "0001")

    assert response.status_code == 200
    block = html.unescape(result_block(response))
    assert case.reference in block
    assert "Respiratory medicine" in block
    with translation.override("en"):
        assert str(Status(case.status).label) in block


def test_it_shows_nothing_personal_about_the_case(
    case: Case, visitor: Client, alice: User, doctor: Professional
) -> None:
    Document.objects.create(
        case=case, uploader=alice, storage_key="cases/test/xray", original_name=DOCUMENT_NAME,
        content_type="application/pdf", size=1234, sha256="0" * 64,
    )

    response = track(visitor, case.reference, "0001")

    body = html.unescape(response.content.decode())
    assert case.reference in result_block(response)
    for private in (alice.name, alice.phone, SECRET_DESCRIPTION, DOCUMENT_NAME, doctor.user.name, doctor.user.phone):
        assert private not in body


def test_it_gives_a_wrong_pair_and_a_missing_case_the_very_same_answer(
    case: Case, bobs_case: Case, visitor: Client
) -> None:
    answers = [
        track(visitor, case.reference, "0002"),  # Alice's case, Bob's digits
        track(visitor, bobs_case.reference, "0001"),  # Bob's case, Alice's digits
        track(visitor, "ZZZZZZZZ", "0001"),  # no such case
        track(visitor, case.reference[:-1], "0001"),  # a reference cut short
    ]

    assert {response.status_code for response in answers} == {200}
    blocks = {result_block(response) for response in answers}
    assert len(blocks) == 1
    block = blocks.pop()
    assert _t("No case matches this reference and phone number. Please check both and try again.") in html.unescape(
        block
    )
    assert case.reference not in block and bobs_case.reference not in block


@pytest.mark.parametrize("typed", ["lower", "padded", "spaced"])
def test_it_accepts_a_reference_typed_in_lowercase_or_with_spaces(case: Case, visitor: Client, typed: str) -> None:
    reference = {
        "lower": case.reference.lower(),
        "padded": f"  {case.reference} ",
        "spaced": f" {case.reference[:4].lower()} {case.reference[4:]} ",
    }[typed]

    response = track(visitor, reference, "0001")

    assert case.reference in result_block(response)


def test_it_refuses_the_eleventh_attempt_from_one_address_even_for_the_right_pair(
    case: Case, visitor: Client
) -> None:
    for _ in range(10):
        assert track(visitor, "ZZZZZZZZ", "0001").status_code == 200

    response = track(visitor, case.reference, "0001")

    assert response.status_code == 429
    body = html.unescape(response.content.decode())
    assert 'id="track-result"' not in body
    assert _t(TOO_MANY) % {"wait": ""} in body
    with translation.override("en"):
        assert str(Status(case.status).label) not in body


def test_it_counts_the_attempts_of_each_address_apart(case: Case, visitor: Client) -> None:
    for _ in range(10):
        track(visitor, "ZZZZZZZZ", "0001", address="203.0.113.7")
    assert track(visitor, case.reference, "0001", address="203.0.113.7").status_code == 429

    response = track(visitor, case.reference, "0001", address="198.51.100.9")

    assert response.status_code == 200
    assert case.reference in result_block(response)


def test_it_answers_again_once_the_ten_minutes_are_over(
    case: Case, visitor: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The count runs in windows of ten minutes on the clock (consult/limits.py): start at one's start.
    start = (time.time() // 600 + 1) * 600 + 1
    monkeypatch.setattr(time, "time", lambda: start)
    for _ in range(11):
        track(visitor, "ZZZZZZZZ", "0001")

    monkeypatch.setattr(time, "time", lambda: start + 9 * 60)
    assert track(visitor, case.reference, "0001").status_code == 429

    monkeypatch.setattr(time, "time", lambda: start + 10 * 60 + 5)
    response = track(visitor, case.reference, "0001")

    assert response.status_code == 200
    assert case.reference in result_block(response)


def test_it_fills_in_the_reference_from_the_receipt_link(case: Case, visitor: Client) -> None:
    response = visitor.get(f"{TRACK}?ref={case.reference}")

    assert response.status_code == 200
    assert f'value="{case.reference}"' in response.content.decode()
    assert 'id="track-result"' not in response.content.decode()


# --- the receipt -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "doctor", "coordinator"])
def test_it_shows_the_receipt_with_a_qr_code_for_the_tracking_page_to_the_people_on_the_case(
    case: Case, who: str, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person

    response = login(user).get(reverse("receipt", args=[case.reference]))

    assert response.status_code == 200
    body = response.content.decode()
    assert f'<strong class="reference">{case.reference}</strong>' in body
    svg = re.search(QR_SVG, body, re.S)
    assert svg, "no inline SVG QR code on the receipt"
    assert decode_svg(svg.group(1)) == [f"http://testserver/track/?ref={case.reference}"]


@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer"])
def test_it_hides_the_receipt_from_anyone_not_on_the_case(
    case: Case, who: str, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person

    response = login(user).get(reverse("receipt", args=[case.reference]))

    assert response.status_code == 404
    assert case.reference not in response.content.decode()


def test_it_sends_an_anonymous_visitor_of_a_receipt_to_the_login_page(case: Case, visitor: Client) -> None:
    response = visitor.get(reverse("receipt", args=[case.reference]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_tracks_the_case_from_the_receipt_qr_code(case: Case, alice: User, login: Callable[..., Client]) -> None:
    receipt = login(alice).get(reverse("receipt", args=[case.reference])).content.decode()
    svg = re.search(QR_SVG, receipt, re.S)
    assert svg
    [url] = decode_svg(svg.group(1))
    phone = login(None, "en")

    page = phone.get(url)
    response = phone.post(url, {"reference": page.context["form"]["reference"].value(), "phone_last4": "0001"})

    assert case.reference in result_block(response)

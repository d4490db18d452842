"""The tracking page's limits hold against the guessing issue 14 measured: a fresh X-Forwarded-For
on every try, or many real addresses on one reference. Counted in the cache with cache.add + incr,
so requests at the same moment all count."""

from __future__ import annotations

import threading
from typing import Any

from django.test import Client
from django.utils import translation

from consult import limits
from consult.models import Case, User

LOOKED_UP = "This case has been looked up too many times today. Please try again tomorrow, or log in to see it."


def guesses_with_the_right_one_250th(right: str) -> list[tuple[str, str]]:
    """Issue 14's attack: 300 guesses of the last four digits, each from a fresh X-Forwarded-For,
    the right one the 250th. Pairs of (digits, X-Forwarded-For)."""
    digits = [f"{n:04d}" for n in range(2000, 2299)]
    digits.insert(249, right)
    return [(d, f"198.51.{n // 250}.{n % 250}") for n, d in enumerate(digits)]


def track(client: Client, reference: str, last4: str, **extra: Any) -> Any:
    return client.post("/track/", {"reference": reference, "phone_last4": last4}, **extra)


def found(response: Any, case: Case) -> bool:
    return response.status_code == 200 and 'id="track-result"' in response.content.decode() and (
        case.get_status_display() in response.content.decode()
    )


def test_it_does_not_find_a_case_with_300_guesses_each_from_a_new_x_forwarded_for(case: Case, alice: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    guesses = guesses_with_the_right_one_250th(alice.phone[-4:])

    answers = [track(client, case.reference, d, HTTP_X_FORWARDED_FOR=xff) for d, xff in guesses]

    assert not any(found(a, case) for a in answers)
    assert [a.status_code for a in answers[10:]] == [429] * 290


def test_it_refuses_the_eleventh_lookup_of_a_reference_from_an_eleventh_address(case: Case, alice: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    for n in range(10):
        assert track(client, case.reference, "9999", REMOTE_ADDR=f"203.0.113.{n}").status_code == 200

    response = track(client, case.reference, alice.phone[-4:], REMOTE_ADDR="203.0.113.99")

    assert response.status_code == 429
    with translation.override("zh-hans"):
        assert translation.gettext(LOOKED_UP) in response.content.decode()
    assert not found(response, case)


def test_it_counts_every_one_of_many_tries_at_the_same_moment(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "probe": "25/hour"}
    allowed: list[bool] = []
    start = threading.Barrier(40)

    def attempt() -> None:
        start.wait()
        try:
            limits.take("probe", "address:203.0.113.1")
        except limits.RateLimited:
            allowed.append(False)
        else:
            allowed.append(True)

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 25
    assert allowed.count(False) == 15

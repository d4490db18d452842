"""Throttles that hold: keyed on the trusted-proxy address (never on a header the client rotates),
on the case reference for tracking, on the user for uploads and messages; 429 in the error shape,
in the client's language."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from knox.models import AuthToken
from rest_framework.test import APIClient

from consult.limits import wait_message
from consult.models import Case, Document, Message, Professional, User
from tests.api.conftest import API, token_client, token_for
from tests.conftest import PASSWORD
from tests.consult import files_corpus as corpus
from tests.consult.test_tracking_limits import guesses_with_the_right_one_250th


def zh(message: str, **params: Any) -> str:
    with translation.override("zh-hans"):
        text = translation.gettext(message)
    assert text != message, f"not translated: {message}"
    return text % params if params else text


def throttled(response: Any) -> dict[str, Any]:
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    return dict(error)


def throttled_in_chinese(response: Any) -> None:
    """The API's 429 text in Chinese, with the wait Retry-After gives (in minutes past two)."""
    message = throttled(response)["message"]
    wait = int(response["Retry-After"])
    with translation.override("zh-hans"):
        expected = wait_message(wait) if wait >= 120 else zh("Too many requests. Please wait %(s)d seconds.", s=wait)
    assert message == expected
    assert "请" in message


def track(client: APIClient, reference: str, last4: str, **extra: Any) -> Any:
    return client.post(f"{API}track/", {"reference": reference, "phone_last4": last4}, format="json", **extra)


def test_it_does_not_find_a_case_with_300_guesses_each_from_a_new_x_forwarded_for(case: Case, alice: User) -> None:
    """What issue 14 found: 300 guesses of the last four digits, a fresh X-Forwarded-For on each,
    reached the right one (here the 250th guess)."""
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    guesses = guesses_with_the_right_one_250th(alice.phone[-4:])

    answers = [track(client, case.reference, d, HTTP_X_FORWARDED_FOR=xff) for d, xff in guesses]

    statuses = [a.status_code for a in answers]
    assert 200 not in statuses
    assert statuses[:10] == [404] * 10  # the reference's ten lookups a day
    assert len(statuses) == 300
    assert set(statuses[10:]) == {429}
    assert throttled(answers[10])["message"] == zh(
        "This case has been looked up too many times today. Please try again tomorrow, or log in to see it."
    )
    throttled(answers[249])


def test_it_counts_lookups_of_one_reference_whatever_the_address(case: Case, alice: User) -> None:
    client = APIClient()
    for n in range(10):
        assert track(client, case.reference, "9999", REMOTE_ADDR=f"203.0.113.{n}").status_code == 404

    # From an eleventh address, with the right digits: refused all the same.
    throttled(track(client, case.reference, alice.phone[-4:], REMOTE_ADDR="203.0.113.99"))
    # Another case's lookups are counted apart.
    assert track(client, "ZZZZZZZZ", "0001", REMOTE_ADDR="203.0.113.99").status_code == 404


def test_it_counts_one_address_however_its_x_forwarded_for_changes(case: Case, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "tracking": "3/hour"}
    client = APIClient()
    for n in range(3):
        assert track(client, f"ZZZZZZZ{n + 2}", "0001", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code == 404

    throttled(track(client, "ZZZZZZZ9", "0001", HTTP_X_FORWARDED_FOR="192.0.2.200"))


def test_it_counts_residents_behind_a_trusted_proxy_apart_and_ignores_what_they_prepend(
    case: Case, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = 1
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "tracking": "3/hour"}
    client = APIClient(REMOTE_ADDR="10.0.0.2")  # the proxy
    for n in range(3):
        forwarded = f"192.0.2.{n}, 203.0.113.7"  # the client wrote the first entry, the proxy the last
        assert track(client, f"ZZZZZZZ{n + 2}", "0001", HTTP_X_FORWARDED_FOR=forwarded).status_code == 404

    throttled(track(client, "ZZZZZZZ9", "0001", HTTP_X_FORWARDED_FOR="192.0.2.77, 203.0.113.7"))
    # Another resident behind the same proxy has her own count.
    assert track(client, "ZZZZZZZ9", "0001", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 404


def test_it_throttles_api_logins_through_rotated_x_forwarded_for(alice: User, bob: User) -> None:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")
    # Ten wrong passwords for ten different numbers (so no lockout is involved), each with a new header.
    for n in range(10):
        wrong = {"phone": f"1380000{n:04d}", "password": "wrong"}
        answer = client.post(f"{API}auth/token/", wrong, format="json", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert answer.status_code == 400

    right = {"phone": bob.phone, "password": PASSWORD}
    answer = client.post(f"{API}auth/token/", right, format="json", HTTP_X_FORWARDED_FOR="198.51.100.77")

    throttled_in_chinese(answer)
    assert not AuthToken.objects.filter(user=bob).exists()


def test_it_throttles_api_messages_per_user_with_the_error_shape_in_chinese(
    case: Case, alice: User, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "messages": "5/hour"}
    token = token_for(alice)
    phone, tablet = token_client(token, "zh-hans"), token_client(token_for(alice), "zh-hans")
    url = f"{API}cases/{case.reference}/messages/"
    for n in range(5):
        client = phone if n % 2 else tablet  # two devices, one count
        assert client.post(url, {"client_id": f"m{n}", "body": "您好"}, format="json").status_code == 201

    throttled_in_chinese(phone.post(url, {"client_id": "m5", "body": "您好"}, format="json"))

    assert Message.objects.filter(case=case, client_id="m5").count() == 0
    assert phone.get(url).status_code == 200  # reading goes on


@pytest.fixture
def small_uploads(settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "uploads": "2/hour"}


def test_it_counts_uploads_from_the_page_and_the_api_together(
    small_uploads: None, case: Case, alice: User, doctor: Professional
) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans", HTTP_ACCEPT="application/json")
    page.force_login(alice)
    url = f"/cases/{case.reference}/documents/"
    files = [SimpleUploadedFile(f"照片{n}.jpg", corpus.jpeg(seed=n), content_type="image/jpeg") for n in (1, 2, 3)]

    answer = page.post(url, {"files": files, "kind": "other"})

    assert answer.status_code == 429
    results = answer.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[2]["message"].startswith("照片3.jpg")
    assert zh("Too many tries. %(wait)s", wait="") in results[2]["message"]
    api = token_client(token_for(alice), "zh-hans")
    body = {"file": SimpleUploadedFile("报告.jpg", corpus.jpeg(seed=4), content_type="image/jpeg"), "kind": "other"}
    throttled(api.post(f"{API}cases/{case.reference}/documents/", body, format="multipart"))
    assert Document.objects.filter(case=case).count() == 2

"""The public "check a document" page takes a file from anyone: the files it reads are counted per
client address (THROTTLE_VERIFY_UPLOADS), past which it answers 429 in the visitor's language and
reads nothing. Looking a code up without a file is not counted."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import services
from consult.models import Case, Document, DocumentKind

PDF = b"%PDF-1.4 the summary as printed"
TOO_MANY = "Too many tries. %(wait)s"
UNCHANGED = "The file you checked is exactly this document: it has not been changed."


@pytest.fixture
def summary(case: Case) -> Document:
    return Document.objects.create(
        case=case, kind=DocumentKind.SUMMARY, storage_key="cases/x/summary.pdf", original_name="summary.pdf",
        content_type="application/pdf", size=len(PDF), sha256=hashlib.sha256(PDF).hexdigest(),
        verification_code="V3R1FYC0DE",
    )  # fmt: skip


def check(client: Client, document: Document, **extra: Any) -> Any:
    return client.post(
        reverse("verify_document", args=[document.verification_code]),
        {"file": SimpleUploadedFile("summary.pdf", PDF, content_type="application/pdf")},
        **extra,
    )


def test_it_refuses_the_fourth_file_from_one_address_with_a_translated_429(
    summary: Document, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verify_uploads": "3/hour"}
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    with translation.override("zh-hans"):
        unchanged = translation.gettext(UNCHANGED)
        too_many = translation.gettext(TOO_MANY).split("%")[0]
    for _ in range(3):
        answer = check(client, summary)
        assert answer.status_code == 200 and unchanged in answer.content.decode()
    hashed: list[bytes | None] = []
    real_verify = services.document_verify

    def verify(**kwargs: Any) -> Any:
        hashed.append(kwargs["data"])
        return real_verify(**kwargs)

    monkeypatch.setattr(services, "document_verify", verify)

    response = check(client, summary)

    assert response.status_code == 429
    page = response.content.decode()
    assert too_many in page and unchanged not in page
    assert hashed == [None]  # the file was not read
    # Another address still may; looking the code up without a file is not counted either.
    assert check(client, summary, REMOTE_ADDR="203.0.113.7").status_code == 200
    assert client.get(reverse("verify_document", args=[summary.verification_code])).status_code == 200


def test_it_does_not_let_a_new_x_forwarded_for_on_each_try_escape_the_count(summary: Document, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verify_uploads": "3/hour"}
    client = Client()

    answers = [check(client, summary, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(6)]

    assert answers == [200, 200, 200, 429, 429, 429]

"""Uploads scanned by a real ClamAV daemon (tests/clamav.py: EICAR is its one signature)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import files
from consult.models import Case, Document, User
from tests.clamav import SIGNATURE, clamd_socket  # noqa: F401 - the fixture
from tests.consult import files_corpus as corpus
from tests.consult import hostile_files as hostile
from tests.consult.hostile_files import SCANNER_DOWN

INFECTED = f"This file contains a virus or other harmful content ({SIGNATURE}.UNOFFICIAL) and was not kept."


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def private_files(settings: Any, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private", "base_url": None},
        },
    }


@pytest.fixture
def scanner(settings: Any, clamd_socket: Path) -> Path:  # noqa: F811
    settings.CLAMAV_SOCKET = str(clamd_socket)
    settings.CLAMAV_REQUIRED = True
    return clamd_socket


@pytest.fixture
def scanner_down(settings: Any, tmp_path: Path) -> None:
    settings.CLAMAV_SOCKET = str(tmp_path / "nobody-listens.sock")
    settings.CLAMAV_REQUIRED = True
    settings.CLAMAV_TIMEOUT = 2


def upload(client: Client, case: Case, data: bytes) -> Any:
    return client.post(
        reverse("document_upload", kwargs={"reference": case.reference}),
        {"kind": "exam_report", "files": [SimpleUploadedFile("report.pdf", data, content_type="application/pdf")]},
        HTTP_ACCEPT="application/json",
    )


def test_it_refuses_an_infected_file_with_the_scanner_s_finding(scanner: Path) -> None:
    with pytest.raises(files.UploadRefused) as refused:
        files.check_upload(io.BytesIO(hostile.pdf_with_eicar()), "report.pdf")

    assert (refused.value.code, refused.value.messages) == ("infected", [INFECTED])


def test_it_keeps_a_clean_file_the_scanner_passed(scanner: Path) -> None:
    data = corpus.pdf(title="Scanned and clean")

    assert files.check_upload(io.BytesIO(data), "report.pdf").data == data


def test_it_refuses_an_infected_upload_on_the_page_and_keeps_nothing(
    scanner: Path, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = upload(login(alice, "en"), case, hostile.pdf_with_eicar())

    assert response.status_code == 400
    assert response.json()["results"] == [{"name": "report.pdf", "ok": False, "message": f"report.pdf: {INFECTED}"}]
    assert not Document.objects.exists()
    assert files.stored_keys() == []


def test_it_answers_503_and_keeps_nothing_when_the_required_scanner_is_down(
    scanner_down: None, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = upload(login(alice, "en"), case, corpus.pdf(title="While the scanner is down"))

    assert response.status_code == 503
    assert response.json()["results"] == [
        {"name": "report.pdf", "ok": False, "message": f"report.pdf: {SCANNER_DOWN}"}
    ]
    assert not Document.objects.exists()
    assert files.stored_keys() == []


def test_it_keeps_uploads_unscanned_when_the_scanner_is_down_but_not_required(
    scanner_down: None, settings: Any
) -> None:
    settings.CLAMAV_REQUIRED = False
    data = corpus.pdf(title="Scanner optional")

    assert files.check_upload(io.BytesIO(data), "report.pdf").data == data

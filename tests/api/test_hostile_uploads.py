"""The API's upload answers hostile files in its one error shape: never a 500, nothing kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from consult import files
from consult.models import Case, Document, User
from tests.api.conftest import API, assert_error_shape
from tests.consult import files_corpus as corpus
from tests.consult import hostile_files as hostile
from tests.consult.hostile_files import SCANNER_DOWN


def upload(client: APIClient, case: Case, data: bytes) -> Any:
    body = {"file": SimpleUploadedFile("report.pdf", data, content_type="application/pdf"), "kind": "exam_report"}
    return client.post(f"{API}cases/{case.reference}/documents/", body, format="multipart")


@pytest.mark.parametrize(
    ("build", "code"),
    [
        pytest.param(hostile.deep_page_tree, "pdf_too_complex", id="page-tree-150-deep"),
        pytest.param(hostile.object_stream_bomb, "pdf_too_complex", id="object-stream-inflating-to-300MB"),
        pytest.param(hostile.long_name, "pdf_too_complex", id="name-of-100000-characters"),
        pytest.param(hostile.unknown_encryption, "pdf_unsupported", id="encrypt-version-9"),
        pytest.param(hostile.open_action_uri, "active_pdf", id="open-action-uri"),
    ],
)
def test_it_refuses_a_hostile_pdf_in_the_error_shape_and_keeps_nothing(
    case: Case, alice: User, api: Callable[..., APIClient], build: Callable[[], bytes], code: str
) -> None:
    response = upload(api(alice), case, build())

    assert_error_shape(response, 400, code)
    assert not Document.objects.exists()
    assert files.stored_keys() == []


def test_it_answers_503_in_the_error_shape_when_the_required_scanner_is_down(
    case: Case, alice: User, api: Callable[..., APIClient], settings: Any, tmp_path: Path
) -> None:
    settings.CLAMAV_SOCKET = str(tmp_path / "nobody-listens.sock")
    settings.CLAMAV_REQUIRED = True

    response = upload(api(alice), case, corpus.pdf(title="While the scanner is down"))

    error = assert_error_shape(response, 503, "scanner_unavailable")
    assert error["message"] == SCANNER_DOWN
    assert not Document.objects.exists()
    assert files.stored_keys() == []

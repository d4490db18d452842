"""An intake with a PDF the reader cannot take, or while the required scanner is down: the form comes
back with the worker's answers and the reason beside the files; nothing is created, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from consult import files
from consult.models import Case, Document, Professional, Skill, User
from legal.models import CityRates, LegalIntake
from tests.consult import hostile_files as hostile
from tests.consult.hostile_files import SCANNER_DOWN, TOO_COMPLEX, UNSUPPORTED
from tests.legal.conftest import EMPLOYER, body, intake_post, intake_url, staged_tokens


def assert_form_kept(page: str) -> None:
    assert f'value="{EMPLOYER}"' in page
    assert "病假20天，公司只发了802元，低于法定标准。</textarea>" in page
    assert '<option value="杭州" selected>' in page


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        pytest.param(hostile.deep_page_tree, TOO_COMPLEX, id="page-tree-150-deep"),
        pytest.param(hostile.object_stream_bomb, TOO_COMPLEX, id="object-stream-inflating-to-300MB"),
        pytest.param(hostile.long_name, TOO_COMPLEX, id="name-of-100000-characters"),
        pytest.param(hostile.unknown_encryption, UNSUPPORTED, id="encrypt-version-9"),
    ],
)
def test_it_shows_the_form_again_with_the_pdf_s_reason_and_keeps_the_rest(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client],
    build: Callable[[], bytes], reason: str,
) -> None:
    payslip = SimpleUploadedFile("工资条.pdf", build(), content_type="application/pdf")

    response = login(alice, "en").post(intake_url(sick_pay), intake_post(sick_pay, files_payslip=[payslip]))

    assert response.status_code == 200
    page = body(response)
    assert f"工资条.pdf: {reason}" in page
    assert_form_kept(page)
    # The good file sent alongside is parked for the next try.
    assert "✓ 病假证明.jpg" in page
    assert len(staged_tokens(response)) == 1
    assert not Case.objects.exists() and not LegalIntake.objects.exists() and not Document.objects.exists()


def test_it_keeps_the_form_and_answers_503_when_the_required_scanner_is_down(
    alice: User, sick_pay: Skill, lawyer: Professional, hangzhou: CityRates, login: Callable[..., Client],
    settings: Any, tmp_path: Path,
) -> None:
    settings.CLAMAV_SOCKET = str(tmp_path / "nobody-listens.sock")
    settings.CLAMAV_REQUIRED = True

    response = login(alice, "en").post(intake_url(sick_pay), intake_post(sick_pay))

    assert response.status_code == 503
    page = body(response)
    assert f"工资条.pdf: {SCANNER_DOWN}" in page
    assert_form_kept(page)
    assert not Case.objects.exists() and not Document.objects.exists()
    assert files.stored_keys("staging") == []

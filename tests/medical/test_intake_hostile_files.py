"""The medical intake with a PDF the reader cannot take: the form comes back with every answer and
the reason beside the files, the good X-ray parked; no case, no document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from consult.models import Case, Document, Professional, Skill, User
from tests.consult import hostile_files as hostile
from tests.consult.hostile_files import PICTURE_TOO_COMPLEX, TOO_COMPLEX
from tests.medical.conftest import body
from tests.medical.test_intake import REPORT, XRAY, answers, assert_text_kept, intake_url, report, staged_tokens, xray


def test_it_shows_the_form_again_with_the_report_s_reason_and_keeps_the_rest(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client], private_storage: Any
) -> None:
    report = SimpleUploadedFile("血常规检查报告.pdf", hostile.object_stream_bomb(), content_type="application/pdf")

    response = login(alice, "en").post(
        intake_url(lung_service), answers(lung_service, files_exam_report=report, files_imaging=xray())
    )

    assert response.status_code == 200
    page = body(response)
    assert f"血常规检查报告.pdf: {TOO_COMPLEX}" in page
    assert_text_kept(page)
    assert f"✓ {XRAY}" in page
    assert len(staged_tokens(page)) == 1
    assert not Case.objects.exists() and not Document.objects.exists()


def test_it_shows_the_form_again_with_the_reason_when_a_picture_takes_too_long_to_decode(
    lung_service: Skill, alice: User, doctor: Professional, login: Callable[..., Client], private_storage: Any,
    settings: Any,
) -> None:
    settings.UPLOAD_DECODE_SECONDS = 0.3
    scan = SimpleUploadedFile("CT.png", hostile.slow_picture(), content_type="image/png")

    # The file kept is a PDF: no picture is decoded for it, so a machine slow enough to take the
    # 0.3 s on a good picture too (seen in CI under load) cannot make the test fail.
    response = login(alice, "en").post(
        intake_url(lung_service), answers(lung_service, files_exam_report=report(), files_imaging=scan)
    )

    assert response.status_code == 200
    page = body(response)
    assert f"CT.png: {PICTURE_TOO_COMPLEX}" in page
    assert_text_kept(page)
    assert f"✓ {REPORT}" in page
    assert len(staged_tokens(page)) == 1
    assert not Case.objects.exists() and not Document.objects.exists()

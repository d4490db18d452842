"""Hostile uploads: PDFs that crashed the reader, PDFs that act by themselves, pixel bombs that are
refused from their header, metadata that must not survive, and the same bytes recognised before
any decoding. Reasons are compared in English, word for word as consult/files.py gives them."""

from __future__ import annotations

import io
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pillow_heif
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation
from PIL import Image
from pypdf import PdfReader

from consult import files, services
from consult.models import Case, Document, User
from tests.consult import files_corpus as corpus
from tests.consult import hostile_files as hostile
from tests.consult.hostile_files import PICTURE_TOO_COMPLEX, TOO_COMPLEX, UNSUPPORTED

ACTIVE_PDF = "This PDF contains scripts, attachments or actions, which are not allowed. Please upload a plain copy."
PASSWORD = "The PDF is protected by a password. Please upload a copy without a password."
TOO_MANY_PIXELS = "The picture is too large in pixels. Please send a smaller photo."

CRASHING_PDFS = [
    pytest.param(hostile.deep_page_tree, TOO_COMPLEX, id="page-tree-150-deep"),
    pytest.param(hostile.object_stream_bomb, TOO_COMPLEX, id="object-stream-inflating-to-300MB"),
    pytest.param(hostile.long_name, TOO_COMPLEX, id="name-of-100000-characters"),
    pytest.param(hostile.unknown_encryption, UNSUPPORTED, id="encrypt-version-9"),
]

ACTIVE_PDFS = [
    pytest.param(hostile.open_action_uri, id="open-action-uri"),
    pytest.param(hostile.page_aa_submit_form, id="page-aa-submit-form"),
    pytest.param(hostile.gotor_unc, id="gotor-to-unc-path"),
    pytest.param(hostile.import_data, id="import-data"),
    pytest.param(hostile.javascript_name_tree, id="javascript-name-tree"),
    pytest.param(hostile.javascript_link, id="javascript-link"),
    pytest.param(hostile.launch, id="launch"),
    pytest.param(corpus.pdf_with_attachment, id="embedded-file"),
]


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def private_files(settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private", "base_url": None},
        },
    }


def upload(client: Client, case: Case, name: str, data: bytes) -> Any:
    return client.post(
        reverse("document_upload", kwargs={"reference": case.reference}),
        {"kind": "exam_report", "files": [SimpleUploadedFile(name, data, content_type="application/pdf")]},
        HTTP_ACCEPT="application/json",
    )


def refusal(data: bytes, name: str = "report.pdf") -> files.UploadRefused:
    with pytest.raises(files.UploadRefused) as refused:
        files.check_upload(io.BytesIO(data), name)
    return refused.value


# --- PDFs the reader could not take ---------------------------------------------------------------


@pytest.mark.parametrize(("build", "reason"), CRASHING_PDFS)
def test_it_refuses_a_pdf_the_reader_cannot_take_with_the_reason_and_keeps_nothing(
    case: Case, alice: User, login: Callable[..., Client], build: Callable[[], bytes], reason: str
) -> None:
    response = upload(login(alice, "en"), case, "report.pdf", build())

    assert response.status_code == 400
    assert response.json() == {"results": [{"name": "report.pdf", "ok": False, "message": f"report.pdf: {reason}"}]}
    assert not Document.objects.exists()
    assert files.stored_keys() == []


def test_it_gives_the_reader_s_refusal_in_chinese(case: Case, alice: User, login: Callable[..., Client]) -> None:
    response = upload(login(alice, "zh-hans"), case, "report.pdf", hostile.deep_page_tree())

    assert response.status_code == 400
    assert "无法安全检查" in response.json()["results"][0]["message"]


# --- PDFs that act by themselves or reach outside the file -----------------------------------------


@pytest.mark.parametrize("build", ACTIVE_PDFS)
def test_it_refuses_a_pdf_with_automatic_actions_or_outside_references(build: Callable[[], bytes]) -> None:
    refused = refusal(build())

    assert (refused.code, refused.messages) == ("active_pdf", [ACTIVE_PDF])


def test_it_accepts_a_pdf_that_opens_at_its_first_page_and_links_to_a_web_site() -> None:
    data = hostile.plain_with_web_link_and_start_page()

    checked = files.check_upload(io.BytesIO(data), "report.pdf")

    assert (checked.content_type, checked.data) == ("application/pdf", data)


def test_it_drops_the_gps_position_of_a_photo_inside_a_pdf_and_keeps_the_picture() -> None:
    photo = corpus.jpeg_with_gps(seed=31)
    with Image.open(io.BytesIO(photo)) as original:
        assert original.getexif().get_ifd(corpus.GPS_IFD)
        pixels = original.tobytes()
    data = hostile.pdf_with_phone_photo(photo)

    checked = files.check_upload(io.BytesIO(data), "scan.pdf")

    assert checked.content_type == "application/pdf"
    assert b"Exif" not in checked.data and b"Exif" in data
    page = PdfReader(io.BytesIO(checked.data)).pages[0]
    stream = page["/Resources"]["/XObject"]["/Im1"].get_object()  # type: ignore[index]
    with Image.open(io.BytesIO(stream.get_data())) as kept:
        assert not kept.getexif()
        # The picture itself is copied, not decoded and encoded again.
        assert kept.tobytes() == pixels


def test_it_keeps_a_pdf_without_photo_metadata_byte_for_byte() -> None:
    photo = corpus.jpeg(seed=32)
    assert b"Exif" not in photo
    data = hostile.pdf_with_phone_photo(photo)

    assert files.check_upload(io.BytesIO(data), "scan.pdf").data == data


# --- protection ----------------------------------------------------------------------------------


def test_it_accepts_a_pdf_protected_only_by_an_owner_password() -> None:
    data = hostile.encrypted(user_password="")

    checked = files.check_upload(io.BytesIO(data), "report.pdf")

    assert (checked.content_type, checked.data) == ("application/pdf", data)


def test_it_still_refuses_a_pdf_that_asks_for_a_password_to_open() -> None:
    refused = refusal(hostile.encrypted(user_password="open-sesame"))

    assert (refused.code, refused.messages) == ("encrypted", [PASSWORD])


# --- pictures ------------------------------------------------------------------------------------


def test_it_refuses_a_heic_pixel_bomb_from_its_header_without_decoding_it(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.UPLOAD_MAX_IMAGE_PIXELS = 50_000_000
    data = hostile.HEIC_BOMB.read_bytes()
    assert len(data) < 16_000

    def no_decoding(self: Any) -> Any:
        raise AssertionError("the HEIC was decoded")

    monkeypatch.setattr(pillow_heif.HeifFile, "to_pillow", no_decoding)

    refused = refusal(data, "IMG_0001.HEIC")

    assert (refused.code, refused.messages) == ("too_many_pixels", [TOO_MANY_PIXELS])


def test_it_drops_the_jpeg_comment_and_xmp_when_it_re_encodes_a_photo() -> None:
    source = Image.new("RGB", (32, 32), "red")
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>30,16N</exif:GPSLatitude></x:xmpmeta>'
    source.save(out, format="JPEG", comment=b"home: 12 Wenyi Road", xmp=xmp)
    data = out.getvalue()
    assert b"\xff\xfe" in data and b"12 Wenyi Road" in data and b"GPSLatitude" in data

    checked = files.check_upload(io.BytesIO(data), "photo.jpg")

    with Image.open(io.BytesIO(checked.data)) as stored:
        assert stored.size == (32, 32)
        assert "comment" not in stored.info and "xmp" not in stored.info
    assert b"\xff\xfe" not in checked.data
    assert b"Wenyi" not in checked.data and b"GPSLatitude" not in checked.data


def test_it_refuses_a_picture_that_takes_longer_than_the_decode_time_limit(settings: Any) -> None:
    """Decoding runs in a child killed at UPLOAD_DECODE_SECONDS: the upload is refused with the
    reason then, whatever the picture would have cost (this one takes seconds)."""
    settings.UPLOAD_DECODE_SECONDS = 0.3
    data = hostile.slow_picture()

    started = time.monotonic()
    refused = refusal(data, "scan.png")

    assert (refused.code, refused.messages) == ("image_too_complex", [PICTURE_TOO_COMPLEX])
    assert time.monotonic() - started < 3


def test_it_refuses_a_picture_that_needs_more_memory_than_the_decoder_may_take(settings: Any) -> None:
    settings.UPLOAD_DECODE_MEMORY_MB = 100  # the picture needs ~150 MB decoded

    refused = refusal(hostile.slow_picture(), "scan.png")

    assert (refused.code, refused.messages) == ("image_too_complex", [PICTURE_TOO_COMPLEX])


def test_it_gives_the_slow_pictures_refusal_in_chinese_on_the_case_page(
    case: Case, alice: User, login: Callable[..., Client], settings: Any
) -> None:
    settings.UPLOAD_DECODE_SECONDS = 0.3

    response = upload(login(alice, "zh-hans"), case, "扫描.png", hostile.slow_picture())

    with translation.override("zh-hans"):
        reason = translation.gettext(PICTURE_TOO_COMPLEX)
    assert reason != PICTURE_TOO_COMPLEX
    assert response.status_code == 400
    assert response.json() == {"results": [{"name": "扫描.png", "ok": False, "message": f"扫描.png：{reason}"}]}
    assert not case.documents.exists()


def test_it_decodes_at_most_two_pictures_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big photos sent at once wait for each other instead of adding up their memory: at most two
    decoding children run at once."""
    running = 0
    most = 0
    lock = threading.Lock()
    real_run = subprocess.run

    def counted_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)
            return real_run(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(files.subprocess, "run", counted_run)
    photos = [corpus.png(seed=40 + n) for n in range(5)]
    threads = [threading.Thread(target=files.check_upload, args=(io.BytesIO(p), "scan.png")) for p in photos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most == 2


# --- the same bytes again --------------------------------------------------------------------------


def test_it_knows_a_photo_already_on_the_case_before_decoding_it_again(
    case: Case, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = corpus.jpeg_with_gps(seed=21)
    first, created = services.document_add(case=case, uploader=alice, upload=io.BytesIO(photo), name="a.jpg")
    assert created
    decoded: list[str] = []
    real_clean = files._clean_image

    def counting(data: bytes, content_type: str) -> tuple[bytes, str]:
        decoded.append(content_type)
        return real_clean(data, content_type)

    monkeypatch.setattr(files, "_clean_image", counting)

    again, created = services.document_add(case=case, uploader=alice, upload=io.BytesIO(photo), name="b.jpg")

    assert (again, created) == (first, False)
    assert decoded == []
    assert case.documents.count() == 1

"""Phones (iPhones above all) send HEIC photos: they are kept as JPEG, which every browser shows."""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image

from consult import files


def heic_photo() -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), "red")).save(out, quality=80)
    return out.getvalue()


def test_it_accepts_a_heic_photo_and_keeps_it_as_jpeg() -> None:
    data = heic_photo()
    assert data[4:12] == b"ftypheic"

    checked = files.check_upload(io.BytesIO(data), "IMG_0001.HEIC")

    assert checked.content_type == "image/jpeg"
    assert checked.name == "IMG_0001.jpg"
    with Image.open(io.BytesIO(checked.data)) as image:
        assert image.format == "JPEG"
        assert image.size == (64, 48)


def test_it_refuses_a_cut_off_heic_photo_as_damaged() -> None:
    data = heic_photo()

    try:
        files.check_upload(io.BytesIO(data[: len(data) // 2]), "IMG_0002.HEIC")
    except files.UploadRefused as refused:
        assert refused.code in ("damaged", "type")
    else:
        raise AssertionError("a cut-off HEIC was accepted")

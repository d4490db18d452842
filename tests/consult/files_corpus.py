"""Files the upload checks must refuse or accept, made in memory so the tests carry no binaries.

Each builder returns the bytes a resident's phone or browser could send. Images differ by colour
or seed, so two of them never have the same SHA-256 by accident.
"""

from __future__ import annotations

import io
import random

from PIL import ExifTags, Image, PngImagePlugin
from pypdf import PdfWriter
from pypdf.actions import JavaScript

# Where the photo was taken: the resident's home. Must not survive the upload.
GPS_IFD = 0x8825
HOME = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (30.0, 16.0, 12.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (120.0, 9.0, 36.0),
}


def _image(fmt: str, *, size: tuple[int, int] = (64, 48), seed: int = 1, **options: object) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg(*, size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    return _image("JPEG", size=size, seed=seed, quality=90)


def jpeg_with_gps(*, seed: int = 2) -> bytes:
    """A phone photo: camera make and the GPS position in its EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[GPS_IFD] = dict(HOME)
    return _image("JPEG", seed=seed, quality=90, exif=exif)


def png(*, size: tuple[int, int] = (64, 48), seed: int = 3) -> bytes:
    return _image("PNG", size=size, seed=seed)


def webp(*, seed: int = 4) -> bytes:
    return _image("WEBP", seed=seed, quality=90)


def png_of_exactly(n_bytes: int, *, seed: int = 5) -> bytes:
    """A genuine PNG padded with a text chunk to exactly `n_bytes` (tEXt is stored uncompressed)."""

    def build(padding: int) -> bytes:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "x" * padding)
        out = io.BytesIO()
        Image.new("RGB", (8, 8), (seed, 0, 0)).save(out, format="PNG", pnginfo=info)
        return out.getvalue()

    data = build(n_bytes - len(build(0)))
    assert len(data) == n_bytes
    return data


def pixel_bomb_png(*, width: int = 2000, height: int = 2000) -> bytes:
    """A small file that decodes to width*height pixels (one colour compresses to almost nothing)."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """The first half of a real photo: the upload broke off."""
    whole = jpeg(size=(256, 256), seed=6)
    return whole[: len(whole) // 2]


def pdf(*, title: str = "Exam report") -> bytes:
    """A plain PDF with one blank A4 page."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_javascript() -> bytes:
    """Runs a script when opened (pypdf 7 replaced `add_js` with `add_open_action`)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_open_action(JavaScript("app.alert('hello');"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_attachment() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("invoice.exe", b"MZ\x90\x00 not really a program")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def elf_executable() -> bytes:
    """The start of a 64-bit Linux program."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 200


def html_page() -> bytes:
    return b"<!DOCTYPE html><html><body><script>fetch('/cases/')</script>Report</body></html>"


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
    )

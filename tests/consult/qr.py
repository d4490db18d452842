"""Reading QR codes back the way a phone would: from the printed page, not from our own data.

A PDF is rasterised with poppler's `pdftoppm` (as a printer would, at 150 dpi) and the image is
decoded with zxing-cpp (a dev dependency). An inline SVG is first laid out in a page by WeasyPrint.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import zxingcpp
from PIL import Image
from weasyprint import HTML

PDFTOPPM = "/usr/bin/pdftoppm"
DPI = 150


def decode_pdf(pdf: bytes, dpi: int = DPI) -> list[str]:
    """The text of every QR code on every page of `pdf`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.pdf").write_bytes(pdf)
        subprocess.run(
            [PDFTOPPM, "-r", str(dpi), "-png", str(folder / "in.pdf"), str(folder / "page")],
            check=True, capture_output=True, timeout=60,
        )
        pages = sorted(folder.glob("page*.png"))
        assert pages, "pdftoppm made no image"
        found: list[str] = []
        for page in pages:
            with Image.open(page) as image:
                codes = zxingcpp.read_barcodes(image)
                found += [code.text for code in codes if code.format == zxingcpp.BarcodeFormat.QRCode]
        return found


def decode_svg(svg: str) -> list[str]:
    """The text of the QR code(s) drawn by an inline SVG."""
    page = f'<html><body style="margin:10mm">{svg}</body></html>'
    return decode_pdf(bytes(HTML(string=page).write_pdf()))

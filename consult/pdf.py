"""HTML templates rendered to PDF by WeasyPrint, with a fetcher that reaches only our static files.

Templates autoescape every value, so a message containing `<b>` or `<img src="file:///...">`
prints literally; and even markup that slipped through could fetch nothing: no `file://`, no
network, only files the staticfiles finders know.
"""

from __future__ import annotations

import io
import logging
import mimetypes
from typing import Any

import segno
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from PIL import ImageFile
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

# Importing WeasyPrint turns on Pillow's lenient loading of truncated images for the whole
# process; uploads must stay strict (a cut-off photo is refused, not padded with grey). Our PDFs
# embed no raster image from a user, so WeasyPrint loses nothing here.
ImageFile.LOAD_TRUNCATED_IMAGES = False

logger = logging.getLogger(__name__)

# A base that cannot resolve anywhere: relative URLs in templates become URLs under it.
PDF_BASE_URL = "https://pdf.invalid/"
STATIC_PREFIX = PDF_BASE_URL.rstrip("/") + settings.STATIC_URL


class StaticOnlyFetcher(URLFetcher):
    """Serves `https://pdf.invalid/static/...` from the project's static files; refuses the rest."""

    def __init__(self) -> None:
        super().__init__(timeout=1, allowed_protocols=("https",))
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url.startswith(STATIC_PREFIX):
            relative = url[len(STATIC_PREFIX) :].split("?")[0].split("#")[0]
            path = finders.find(relative) if relative and ".." not in relative.split("/") else None
            if isinstance(path, str):
                with open(path, "rb") as handle:
                    body = handle.read()
                content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return URLFetcherResponse(url, body, {"Content-Type": content_type})
        self.refused.append(url)
        logger.warning("PDF fetcher refused %s", url[:200])
        raise ValueError(f"refused: {url[:200]}")


def qr_svg(data: str, *, scale: int = 4) -> SafeString:
    """An inline SVG QR code: drawn in the page, nothing to fetch."""
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", scale=scale, xmldecl=False, svgns=True, border=2)
    return mark_safe(out.getvalue().decode())  # noqa: S308 - segno's own SVG, no user markup


def render_pdf(template: str, context: dict[str, Any], *, fetcher: StaticOnlyFetcher | None = None) -> bytes:
    html = render_to_string(template, context)
    document = HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=fetcher or StaticOnlyFetcher())
    return bytes(document.write_pdf())

"""Request bodies bounded before they are read.

daphne (Twisted) receives a whole request body, spooled to a temporary file, before the
application sees the request, and Django's ASGI handler then reads it all once more before any
middleware runs: a limit in Django would come after a 200 MB upload had been taken in. So the
limit is kept by daphne's request object itself (`install`, from consult/asgi.py): a declared
Content-Length over the limit is answered 413 as soon as the headers are in (before any byte of
the body, and without the "100 Continue" a client may wait for), and a streamed (chunked) body is
cut off with the same answer the moment it passes the limit.

The limit: REQUEST_MAX_BYTES for a request carrying credentials (a session cookie or an
Authorization header: the intake and the upload pages, the API with a token), which fits the
largest upload the document limits allow; REQUEST_MAX_BYTES_ANONYMOUS otherwise (log-in, sign-up,
tracking: a few kilobytes). Whether the credentials are valid is not known here (that takes the
database); a forged cookie gets the larger limit, never more. A reverse proxy in front should
hold the same limit (nginx `client_max_body_size`).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from consult.api.errors import error_body

MB = 1024 * 1024


def limit_for(*, has_session: bool, has_authorization: bool) -> int:
    if has_session or has_authorization:
        return int(settings.REQUEST_MAX_BYTES)
    return int(settings.REQUEST_MAX_BYTES_ANONYMOUS)


def too_large(*, path: str, limit: int, accept_language: str, language_cookie: str) -> tuple[str, str, bytes]:
    """The 413 answer (language, content type, body) in the language the pages would use for this request:
    the API's error shape under /api/, a page elsewhere."""
    probe = HttpRequest()
    probe.path_info = path
    probe.META["HTTP_ACCEPT_LANGUAGE"] = accept_language
    if language_cookie:
        probe.COOKIES[settings.LANGUAGE_COOKIE_NAME] = language_cookie
    with translation.override(translation.get_language_from_request(probe)):
        size = max(1, limit // MB)
        message = _(
            "This is more than the site accepts at once (at most %(mb)d MB). Please send fewer or smaller files."
        ) % {"mb": size}
        if path.startswith("/api/"):
            body = json.dumps(error_body("too_large", message), ensure_ascii=False)
            return translation.get_language(), "application/json", body.encode()
        page = render_to_string("413.html", {"message": message})
        return translation.get_language(), "text/html; charset=utf-8", page.encode()


def _raw_response(content_type: str, body: bytes, language: str) -> bytes:
    head = [
        "HTTP/1.1 413 Content Too Large",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        f"Content-Language: {language}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def install() -> None:
    """Bound every request body daphne receives in this process (see the module's docstring)."""
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_consult_body_limit", False):
        return
    original_got_length = WebRequest.gotLength
    original_chunk = WebRequest.handleContentChunk
    original_process = WebRequest.process

    def refuse(request: Any) -> None:
        request._consult_refused = True
        headers = request.requestHeaders
        # Twisted sends "100 Continue" right after this if the client asked for it: it must not.
        headers.removeHeader(b"Expect")
        path = getattr(request.channel, "_path", b"").split(b"?", 1)[0].decode("latin-1")
        cookie = request.received_cookies.get(settings.LANGUAGE_COOKIE_NAME.encode(), b"").decode("latin-1")
        accept = b",".join(headers.getRawHeaders(b"Accept-Language") or []).decode("latin-1")
        language, content_type, body = too_large(
            path=path, limit=request._consult_limit, accept_language=accept, language_cookie=cookie
        )
        transport = request.channel.transport
        transport.write(_raw_response(content_type, body, language))
        transport.loseConnection()

    def got_length(self: Any, length: int | None) -> None:
        original_got_length(self, length)
        self._consult_received = 0
        self._consult_refused = False
        session = self.received_cookies.get(settings.SESSION_COOKIE_NAME.encode())
        self._consult_limit = limit_for(
            has_session=bool(session), has_authorization=self.requestHeaders.hasHeader(b"Authorization")
        )
        if length is not None and length > self._consult_limit:
            refuse(self)

    def handle_content_chunk(self: Any, data: bytes) -> None:
        if self._consult_refused:
            return
        self._consult_received += len(data)
        if self._consult_received > self._consult_limit:
            refuse(self)
            return
        original_chunk(self, data)

    def process(self: Any) -> Any:
        if getattr(self, "_consult_refused", False):
            return None
        return original_process(self)

    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_content_chunk
    WebRequest.process = process
    WebRequest._consult_body_limit = True

"""Request bodies are bounded by daphne before they are read (consult/bodylimit.py), on a real
daphne: an anonymous 200 MB POST is answered 413 in the person's language as soon as its headers
are in, a streamed body is cut off once past the limit, and the uploads the document limits allow
still go through (a file over the per-file limit still gets its own clear refusal)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests

from consult import services
from consult.models import Case, Professional, User
from tests.api.conftest import token_for
from tests.consult import files_corpus as corpus
from tests.live import Daphne

MB = 1024 * 1024


@pytest.fixture
def server(transactional_db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daphne]:
    monkeypatch.setenv("PRIVATE_FILES_ROOT", str(tmp_path / "private"))
    daphne = Daphne().start(timeout=60)  # a loaded machine may take longer than the default 20 s
    try:
        yield daphne
    finally:
        daphne.stop()


def raw_post(server: Daphne, path: str, head: str, body_chunks: Iterable[bytes] = ()) -> tuple[bytes, int, float]:
    """POST with only `head` as headers; send body chunks until the server stops reading. Returns
    the answer, the body bytes sent and the seconds the answer took."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    started = time.monotonic()
    sent = 0
    with sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: what it refused is not read
            pass
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
        except OSError:
            pass
    return answer, sent, time.monotonic() - started


def test_it_refuses_an_anonymous_200_mb_post_from_its_headers_in_the_persons_language(server: Daphne) -> None:
    head = (
        "Accept-Language: zh-hans\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {200 * MB}\r\n"
    )

    answer, _sent, seconds = raw_post(server, "/accounts/login/", head)

    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 413 Content Too Large"
    assert b"Content-Language: zh-hans" in rest and b"text/html" in rest
    assert "超出了本站一次能接收的大小（最多 1 MB）" in rest.decode()
    assert seconds < 5


def test_it_answers_the_api_in_its_error_shape_and_without_a_100_continue(server: Daphne) -> None:
    head = (
        "Accept-Language: en\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
        f"Content-Length: {200 * MB}\r\n"
    )

    answer, _sent, _seconds = raw_post(server, "/api/v1/auth/token/", head)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer
    body = answer.partition(b"\r\n\r\n")[2].decode()
    assert body.startswith('{"error": {"code": "too_large", "message": "This is more than the site accepts at once')


def test_it_cuts_off_a_streamed_body_past_the_limit(server: Daphne) -> None:
    chunk = b"x" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    def body() -> Iterator[bytes]:
        for _ in range(200 * MB // len(chunk)):
            yield framed

    answer, sent, _seconds = raw_post(server, "/api/v1/auth/token/", "Transfer-Encoding: chunked\r\n", body())

    assert answer.startswith(b"HTTP/1.1 413 ")
    # The limit is 1 MB; what the kernel's buffers took before the close is a few MB, not 200.
    assert sent < 20 * MB, sent


def test_it_still_takes_the_uploads_the_document_limits_allow(
    server: Daphne, alice: User, doctor: Professional, case: Case
) -> None:
    services.case_accept(case=case, professional=doctor)
    headers = {"Authorization": f"Token {token_for(alice)}", "Accept-Language": "en"}
    url = f"{server.url}/api/v1/cases/{case.reference}/documents/"

    # Over the anonymous limit, within the per-file one: taken.
    taken = requests.post(
        url, headers=headers, files={"file": ("scan.png", corpus.png_of_exactly(3 * MB), "image/png")}, timeout=60
    )
    # Over the per-file limit (20 MB), within the request limit: the file's own clear refusal.
    refused = requests.post(
        url, headers=headers, files={"file": ("big.png", corpus.png_of_exactly(21 * MB), "image/png")}, timeout=60
    )

    assert taken.status_code == 201, taken.text
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "too_big"

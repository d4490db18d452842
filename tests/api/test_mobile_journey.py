"""A phone app's whole journey against a real daphne, over HTTP and a real websocket: the resident
logs in with a token, opens a case (retried with its Idempotency-Key), uploads a PDF; the doctor
logs in, sees the case, accepts it; both chat over the socket with their tokens (no Origin, as
apps send none); the doctor writes the note, resolves and closes; the resident downloads the
summary PDF. Every wait is bounded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from websockets.sync.client import ClientConnection, connect

from consult.models import Case, Professional, User
from tests.api.conftest import API, MEDICAL_BODY, NOTE_BODY
from tests.conftest import PASSWORD, second_factor_fields
from tests.consult import files_corpus as corpus
from tests.live import Daphne, live_daphne  # noqa: F401 - the fixture is used through `server`

HTTP_TIMEOUT = 15  # seconds, for every request (the close prints a PDF)
WS_TIMEOUT = 5  # seconds, for every socket operation
EN = {"Accept-Language": "en"}


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch, private_storage: Path) -> None:
    """Passed on to the server: this test's private folder, and a channel and cache prefix of its
    own (so on Redis nothing of another run, or of this process, is seen)."""
    monkeypatch.setenv("PRIVATE_FILES_ROOT", str(private_storage))
    monkeypatch.setenv("CHANNELS_PREFIX", f"api-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def server(server_env: None, request: pytest.FixtureRequest) -> Daphne:
    """`live_daphne`, started only once `server_env` is in the environment it copies."""
    daphne: Daphne = request.getfixturevalue("live_daphne")
    return daphne


def server_password(user: User) -> None:
    """The server checks passwords with the project's hashers, not the tests' fast MD5 one: store
    a PBKDF2 hash (with few rounds; the server upgrades it on the first login)."""
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])


class App:
    """One phone: a requests session carrying the token it got from logging in."""

    def __init__(self, server: Daphne, user: User) -> None:
        self.server = server
        self.http = requests.Session()
        self.http.trust_env = False  # loopback, whatever proxy the environment names
        self.http.headers.update(EN)
        credentials = {"phone": user.phone, "password": PASSWORD, **second_factor_fields(user)}
        response = self.post("auth/token/", json=credentials)
        assert response.status_code == 200, response.text
        self.token: str = response.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def url(self, path: str) -> str:
        """An API path ("cases/"), or a server path as the API hands them out ("/api/v1/...")."""
        return f"{self.server.url}{path}" if path.startswith("/") else f"{self.server.url}{API}{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=HTTP_TIMEOUT, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), timeout=HTTP_TIMEOUT, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.put(self.url(path), timeout=HTTP_TIMEOUT, **kwargs)

    def socket(self, reference: str) -> ClientConnection:
        ws_url = self.server.url.replace("http://", "ws://") + f"/ws/cases/{reference}/"
        return connect(
            ws_url, additional_headers={"Authorization": f"Token {self.token}"}, open_timeout=WS_TIMEOUT,
            close_timeout=WS_TIMEOUT,
        )


def frame_of_type(socket: ClientConnection, frame_type: str, **match: Any) -> dict[str, Any]:
    """The next frame of `frame_type` (matching `match`), skipping presence, place and the like."""
    for _ in range(100):
        frame = json.loads(socket.recv(timeout=WS_TIMEOUT))
        if frame["type"] == frame_type and all(
            frame.get(k) == v or frame.get("message", {}).get(k) == v for k, v in match.items()
        ):
            return dict(frame)
        assert frame["type"] != "error", frame
    raise AssertionError(f"no {frame_type} frame")


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    """Every socket opened through it is closed after the test, passed or failed."""
    with ExitStack() as stack:
        yield stack


@pytest.mark.django_db(transaction=True)
def test_it_carries_a_phone_app_from_login_to_the_summary_pdf(
    server: Daphne, alice: User, doctor: Professional, sockets: ExitStack,
) -> None:
    server_password(alice)
    server_password(doctor.user)

    # The resident logs in and opens a case; the network drops the answer, the app retries.
    resident = App(server, alice)
    key = str(uuid.uuid4())
    opened = resident.post("cases/medical/", json=MEDICAL_BODY, headers={"Idempotency-Key": key})
    retried = resident.post("cases/medical/", json=MEDICAL_BODY, headers={"Idempotency-Key": key})
    assert opened.status_code == 201, opened.text
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replay"] == "true"
    reference = opened.json()["reference"]
    assert retried.json()["reference"] == reference
    assert Case.objects.filter(resident=alice).count() == 1

    # A photo of the exam report, as a multipart upload.
    report = corpus.pdf(title="Chest X-ray report")
    uploaded = resident.post(
        f"cases/{reference}/documents/",
        files={"file": ("胸片报告.pdf", report, "application/pdf")},
        data={"kind": "exam_report"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["kind"] == "exam_report"

    # The doctor logs in on their phone, finds the case and accepts it.
    physician = App(server, doctor.user)
    listed = physician.get("cases/")
    assert listed.status_code == 200
    assert reference in [c["reference"] for c in listed.json()]
    detail = physician.get(f"cases/{reference}/").json()
    assert "accept" in detail["actions"]
    assert [d["name"] for d in detail["documents"]] == ["胸片报告.pdf"]
    accepted = physician.post(f"cases/{reference}/accept/")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"

    # Both open the case room with their tokens and no Origin, as apps do.
    resident_socket = sockets.enter_context(resident.socket(reference))
    doctor_socket = sockets.enter_context(physician.socket(reference))
    for socket in (resident_socket, doctor_socket):
        socket.send(json.dumps({"type": "hello", "last_seq": 0}))
        frame_of_type(socket, "synced")

    resident_socket.send(json.dumps({"type": "message", "client_id": "phone-1", "body": "医生您好，报告已上传。"}))
    ack = frame_of_type(resident_socket, "ack", client_id="phone-1")
    heard = frame_of_type(doctor_socket, "message", client_id="phone-1")
    assert heard["message"]["body"] == "医生您好，报告已上传。"
    assert heard["message"]["sender_id"] == alice.pk
    assert heard["message"]["seq"] == ack["seq"]

    doctor_socket.send(json.dumps({"type": "message", "client_id": "doc-1", "body": "收到，我看一下。"}))
    frame_of_type(doctor_socket, "ack", client_id="doc-1")
    reply = frame_of_type(resident_socket, "message", client_id="doc-1")
    assert reply["message"]["sender_id"] == doctor.user.pk

    # The history over HTTP has both, once each.
    history = resident.get(f"cases/{reference}/messages/").json()
    assert [m["client_id"] for m in history if m["kind"] != "system"] == ["phone-1", "doc-1"]

    # The doctor writes the note, resolves, closes.
    noted = physician.put(f"cases/{reference}/note/", json=NOTE_BODY)
    assert noted.status_code == 200, noted.text
    assert noted.json()["domain"]["note"]["advice"] == NOTE_BODY["advice"]
    resolved = physician.post(f"cases/{reference}/resolve/")
    assert resolved.status_code == 200, resolved.text
    closed = physician.post(f"cases/{reference}/close/")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"

    # The resident sees the summary on the case and downloads it.
    documents = resident.get(f"cases/{reference}/").json()["documents"]
    summary = next(d for d in documents if d["kind"] == "summary")
    downloaded = resident.get(summary["url"])
    assert downloaded.status_code == 200
    assert downloaded.headers["Content-Type"] == "application/pdf"
    assert downloaded.content.startswith(b"%PDF")
    # A made-up token does not open it.
    stranger = requests.Session()
    stranger.trust_env = False
    forged = stranger.get(resident.url(summary["url"]), headers={"Authorization": "Token " + "0" * 64}, timeout=5)
    assert forged.status_code == 401

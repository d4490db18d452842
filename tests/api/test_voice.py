"""Voice messages from the API: POST cases/<ref>/messages/voice/, the same checks and service as the
case page, the recording fetched by the participants only, and documented in the schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from consult import files
from consult.models import Case, Document, DocumentKind, Professional, User
from tests.api.conftest import API, assert_error_shape
from tests.consult import audio_corpus as audio
from tests.consult import files_corpus as corpus


def send(client: APIClient, case: Case, data: bytes, name: str = "voice.m4a", client_id: str = "a1") -> Any:
    body = {"file": SimpleUploadedFile(name, data, content_type="audio/mp4"), "client_id": client_id}
    return client.post(f"{API}cases/{case.reference}/messages/voice/", body, format="multipart")


def test_an_app_sends_a_voice_message_and_the_doctor_plays_it(
    case: Case, alice: User, doctor: Professional, api: Callable[..., APIClient]
) -> None:
    response = send(api(alice), case, audio.mp4_aac())

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] and body["message"]["body"] == ""
    sent = body["message"]["document"]
    assert sent["is_audio"] and 2900 <= sent["duration_ms"] <= 3100
    document = Document.objects.get(case=case)
    assert document.kind == DocumentKind.VOICE and document.content_type == "audio/mp4"

    history = api(doctor.user).get(f"{API}cases/{case.reference}/messages/").json()
    assert history[-1]["document"] == sent
    fetched = api(doctor.user).get(f"{API}cases/{case.reference}/documents/{document.pk}/")
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == "audio/mp4"
    with files.open_stored(document.storage_key) as handle:
        assert b"".join(fetched.streaming_content) == handle.read()


def test_a_retry_gets_the_first_message(case: Case, alice: User, api: Callable[..., APIClient]) -> None:
    client = api(alice)
    first = send(client, case, audio.webm_opus(), name="v.webm")
    again = send(client, case, audio.webm_opus(), name="v.webm")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["seq"] == first.json()["seq"]
    assert Document.objects.filter(case=case).count() == 1


@pytest.mark.parametrize(
    ("build", "status", "code"),
    [
        # Not a kind of file a voice message can be: 415, as for the documents' upload.
        pytest.param(audio.video_named_m4a, 415, "audio_video", id="video-named-m4a"),
        pytest.param(corpus.pdf_with_javascript, 415, "audio_type", id="pdf-with-javascript"),
        pytest.param(corpus.elf_executable, 415, "audio_type", id="executable"),
        pytest.param(audio.two_hours_m4a, 400, "audio_too_long", id="two-hour-recording"),
        pytest.param(lambda: audio.truncated(audio.mp4_aac()), 400, "audio_damaged", id="truncated"),
    ],
)
def test_it_refuses_a_bad_recording_in_the_error_shape_and_keeps_nothing(
    case: Case, alice: User, api: Callable[..., APIClient], build: Callable[[], bytes], status: int, code: str
) -> None:
    response = send(api(alice), case, build())

    assert_error_shape(response, status, code)
    assert not Document.objects.exists()
    assert files.stored_keys() == []


def test_it_asks_for_a_client_id(case: Case, alice: User, api: Callable[..., APIClient]) -> None:
    body = {"file": SimpleUploadedFile("v.m4a", audio.mp4_aac(), content_type="audio/mp4")}
    response = api(alice).post(f"{API}cases/{case.reference}/messages/voice/", body, format="multipart")

    assert_error_shape(response, 400)
    assert not Document.objects.exists()


@pytest.mark.parametrize("outsider", ["bob", "other_doctor", "lawyer"])
def test_an_outsider_can_neither_send_nor_fetch_one(
    request: pytest.FixtureRequest, case: Case, alice: User, api: Callable[..., APIClient], outsider: str
) -> None:
    assert send(api(alice), case, audio.mp4_aac()).status_code == 201
    document = Document.objects.get(case=case)
    someone = request.getfixturevalue(outsider)
    client = api(someone.user if isinstance(someone, Professional) else someone)

    assert send(client, case, audio.ogg_opus(), name="v.ogg", client_id="x").status_code == 404
    assert client.get(f"{API}cases/{case.reference}/documents/{document.pk}/").status_code == 404
    assert Document.objects.filter(case=case).count() == 1


def test_anonymous_is_refused(case: Case) -> None:
    assert send(APIClient(), case, audio.mp4_aac()).status_code == 401


def test_the_schema_documents_it(api: Callable[..., APIClient], alice: User) -> None:
    schema = APIClient().get(f"{API}schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/cases/{reference}/messages/voice/"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][form]["required"]) == {"file", "client_id"}
    assert {"200", "201"} <= set(operation["responses"])
    download = schema["paths"]["/api/v1/cases/{reference}/documents/{document_id}/"]["get"]["responses"]["200"]
    assert {"audio/webm", "audio/mp4", "audio/ogg"} <= set(download["content"])

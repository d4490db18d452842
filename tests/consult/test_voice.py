"""Voice messages: recordings judged by their bytes (consult/files.py check_audio), kept privately
on the case, posted in its chat with their duration, and sent from the case page. Reasons are
compared in English, word for word as consult/files.py gives them."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import files
from consult.errors import NotAllowed, WrongState
from consult.models import Case, Document, DocumentKind, Message, Professional, Status, User
from consult.services import messages as chat
from consult.services.voice import voice_message_post
from tests.consult import audio_corpus as audio
from tests.consult import files_corpus as corpus
from tests.consult import hostile_files as hostile

NOT_AUDIO = "This is not a voice recording the chat can play. Please record it again with the microphone button."
VIDEO = "This file contains video. Only voice recordings can be sent as voice messages."
TOO_LONG = "The recording is too long. A voice message may be at most 5 minutes."
DAMAGED = "The recording is damaged or incomplete. Please record it again."


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def private_files(settings: Any, tmp_path: Any) -> None:
    settings.VOICE_MAX_SECONDS = 300
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private", "base_url": None},
        },
    }


def judge(data: bytes, name: str = "voice.webm") -> files.CheckedAudio:
    return files.check_audio(files.receive(io.BytesIO(data), name))


def refusal(data: bytes, name: str = "voice.m4a") -> str:
    with pytest.raises(files.UploadRefused) as refused:
        judge(data, name)
    return " ".join(refused.value.messages)


# --- by their bytes --------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(audio.webm_opus, "voice.webm", "audio/webm", "voice.webm", id="chromium-webm-opus"),
    pytest.param(audio.mp4_aac, "录音.mp4", "audio/mp4", "录音.m4a", id="safari-mp4-aac"),
    pytest.param(audio.ogg_opus, "voice.ogg", "audio/ogg", "voice.ogg", id="firefox-ogg-opus"),
    pytest.param(audio.ogg_opus, "voice.m4a", "audio/ogg", "voice.ogg", id="ogg-named-m4a-is-known-by-its-bytes"),
]


@pytest.mark.parametrize(("build", "name", "content_type", "kept_name"), ACCEPTED)
def test_it_accepts_what_phones_browsers_record_with_its_duration(
    build: Callable[[], bytes], name: str, content_type: str, kept_name: str
) -> None:
    checked = judge(build(), name)

    assert checked.file.content_type == content_type
    assert checked.file.name == kept_name
    assert 2900 <= checked.duration_ms <= 3100


AUDIO_REFUSED = [
    pytest.param(audio.video_named_m4a, VIDEO, id="video-named-m4a"),
    pytest.param(audio.two_hours_m4a, TOO_LONG, id="two-hour-recording"),
    pytest.param(audio.ten_minutes_streamed_webm, TOO_LONG, id="ten-minutes-with-no-length-in-the-header"),
    pytest.param(lambda: audio.truncated(audio.mp4_aac()), DAMAGED, id="truncated-mp4-index-at-the-end"),
    pytest.param(lambda: audio.truncated(audio.faststart_mp4_aac()), DAMAGED, id="truncated-mp4-index-first"),
    pytest.param(lambda: audio.truncated(audio.webm_opus(4)), DAMAGED, id="truncated-webm"),
    pytest.param(lambda: audio.mp4_aac()[:64], DAMAGED, id="mp4-header-only"),
]


@pytest.mark.parametrize(("build", "reason"), AUDIO_REFUSED)
def test_it_refuses_a_bad_recording_with_the_reason(build: Callable[[], bytes], reason: str) -> None:
    assert refusal(build()) == reason


def test_it_refuses_the_two_hour_recording_from_its_header_without_decoding_it(monkeypatch: Any) -> None:
    def no_decoding(*args: Any) -> float:
        raise AssertionError("decoded")

    monkeypatch.setattr(files, "_decoded_seconds", no_decoding)

    assert refusal(audio.two_hours_m4a()) == TOO_LONG


def test_the_limit_comes_from_settings(settings: Any) -> None:
    settings.VOICE_MAX_SECONDS = 2

    with pytest.raises(files.UploadRefused) as refused:
        judge(audio.mp4_aac(3))

    assert refused.value.code == "audio_too_long"
    assert refused.value.messages == ["The recording is too long. A voice message may be at most 1 minutes."]


HOSTILE = [
    pytest.param(corpus.svg_with_script, id="svg-with-script"),
    pytest.param(corpus.html_page, id="html"),
    pytest.param(corpus.elf_executable, id="executable"),
    pytest.param(corpus.pdf_with_javascript, id="pdf-with-javascript"),
    pytest.param(corpus.pdf_with_attachment, id="pdf-with-embedded-file"),
    pytest.param(corpus.truncated_jpeg, id="truncated-jpeg"),
    pytest.param(corpus.jpeg_with_gps, id="jpeg"),
    pytest.param(corpus.pixel_bomb_png, id="decompression-bomb-png"),
    pytest.param(hostile.deep_page_tree, id="pdf-page-tree-150-deep"),
    pytest.param(hostile.launch, id="pdf-launch"),
    pytest.param(lambda: hostile.EICAR, id="eicar"),
    # A playlist would make FFmpeg open other files or addresses if it chose its own demuxer.
    pytest.param(lambda: b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", id="hls-playlist-reading-a-local-file"),
    pytest.param(lambda: b"ffconcat version 1.0\nfile /etc/passwd\n", id="ffconcat-script"),
]


@pytest.mark.parametrize("build", HOSTILE)
def test_the_hostile_corpus_is_refused_as_a_voice_message(build: Callable[[], bytes]) -> None:
    assert refusal(build()) == NOT_AUDIO


def test_a_missing_ffmpeg_is_the_servers_fault_not_the_file(monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(files.StorageUnavailable):
        judge(audio.webm_opus())


def stored(document: Document) -> bytes:
    with files.open_stored(document.storage_key) as handle:
        data = handle.read()
    assert isinstance(data, bytes)
    return data


def probed(data: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "probed"
    path.write_bytes(data)
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:format_tags", "-of", "json", str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    found = json.loads(done.stdout)["format"]
    assert isinstance(found, dict)
    return found


def test_what_is_kept_has_no_metadata_and_a_browsers_recording_gets_its_length(tmp_path: Path) -> None:
    memo = audio.mp4_aac_titled("青山村 3 组 12 号")
    assert "青山村" in json.dumps(probed(memo, tmp_path), ensure_ascii=False)
    chromium = audio.webm_opus()
    assert "duration" not in probed(chromium, tmp_path)

    kept_memo = judge(memo, "新录音.m4a").file.data
    kept_chromium = judge(chromium).file.data

    assert "青山村" not in json.dumps(probed(kept_memo, tmp_path), ensure_ascii=False)
    assert "青山村".encode() not in kept_memo
    assert 2.9 <= float(probed(kept_chromium, tmp_path)["duration"]) <= 3.1


# --- kept and posted -------------------------------------------------------------------------


def post(case: Case, sender: User, data: bytes, name: str = "voice.webm", client_id: str = "v1") -> Message:
    message, created = voice_message_post(
        case=case, sender=sender, upload=io.BytesIO(data), name=name, client_id=client_id
    )
    assert created
    return message


def test_it_keeps_the_recording_privately_and_posts_it_with_its_duration(
    case: Case, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    data = audio.webm_opus()

    with django_capture_on_commit_callbacks(execute=True):
        message = post(case, alice, data)

    document = Document.objects.get(case=case)
    assert message.document == document and message.body == ""
    assert document.kind == DocumentKind.VOICE and document.content_type == "audio/webm"
    assert 2900 <= (document.duration_ms or 0) <= 3100
    with files.open_stored(document.storage_key) as handle:
        kept = handle.read()
    # The same recording, copied into a new file of its kind: what it is judged by, again.
    assert kept != data and judge(kept).duration_ms == document.duration_ms
    assert document.sha256 == hashlib.sha256(kept).hexdigest()
    assert document.received_sha256 == hashlib.sha256(data).hexdigest()
    payload = chat.message_payload(message)["document"]
    assert payload["is_audio"] and not payload["is_image"]
    assert payload["duration_ms"] == document.duration_ms
    assert payload["url"] == reverse("document_download", args=[case.reference, document.pk])


def test_the_assigned_doctor_sends_one_too(case: Case, doctor: Professional) -> None:
    message = post(case, doctor.user, audio.mp4_aac(), name="voice.mp4")

    assert message.sender == doctor.user and message.document is not None
    assert message.document.content_type == "audio/mp4"


def test_a_retry_with_the_same_client_id_is_stored_once(case: Case, alice: User) -> None:
    first = post(case, alice, audio.webm_opus())

    again, created = voice_message_post(
        case=case, sender=alice, upload=io.BytesIO(b"not read again"), name="voice.webm", client_id="v1"
    )

    assert not created and again == first
    assert Document.objects.filter(case=case).count() == 1


def test_voice_messages_do_not_take_the_places_of_the_cases_files(case: Case, alice: User, settings: Any) -> None:
    settings.UPLOAD_MAX_FILES_PER_CASE = 1
    post(case, alice, audio.webm_opus(), client_id="a")
    post(case, alice, audio.ogg_opus(), client_id="b")

    assert Document.objects.filter(case=case, kind=DocumentKind.VOICE).count() == 2


@pytest.mark.parametrize("outsider", ["bob", "other_doctor"])
def test_an_outsider_cannot_post_one(request: pytest.FixtureRequest, case: Case, outsider: str) -> None:
    someone = request.getfixturevalue(outsider)
    user = someone.user if isinstance(someone, Professional) else someone

    with pytest.raises(NotAllowed):
        voice_message_post(case=case, sender=user, upload=io.BytesIO(audio.webm_opus()), name="v.webm")

    assert not Document.objects.filter(case=case).exists()


def test_nothing_is_kept_from_a_refused_recording(case: Case, alice: User) -> None:
    with pytest.raises(files.UploadRefused):
        voice_message_post(case=case, sender=alice, upload=io.BytesIO(audio.video_named_m4a()), name="v.m4a")

    assert not Document.objects.filter(case=case).exists()
    assert not Message.objects.filter(case=case, document__isnull=False).exists()
    assert files.stored_keys() == []


def test_a_finished_case_takes_no_voice_message(case: Case, alice: User) -> None:
    Case.objects.filter(pk=case.pk).update(status=Status.CLOSED)
    case.refresh_from_db()

    with pytest.raises(WrongState):
        voice_message_post(case=case, sender=alice, upload=io.BytesIO(audio.webm_opus()), name="v.webm")


def test_an_ordinary_upload_cannot_claim_to_be_a_voice_message(case: Case, alice: User) -> None:
    from consult import services

    with pytest.raises(files.UploadRefused):
        services.document_add(
            case=case, uploader=alice, upload=io.BytesIO(corpus.pdf()), name="r.pdf", kind=DocumentKind.VOICE
        )


# --- from the case page ----------------------------------------------------------------------


def page_post(client: Client, case: Case, data: bytes, name: str = "voice.webm", client_id: str = "p1") -> Any:
    return client.post(
        reverse("voice_upload", kwargs={"reference": case.reference}),
        {"file": SimpleUploadedFile(name, data, content_type="audio/webm"), "client_id": client_id},
    )


def test_the_case_page_sends_one_and_both_sides_can_play_it(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    response = page_post(login(alice, "en"), case, audio.webm_opus())

    assert response.status_code == 200 and response.json()["ok"]
    document = Document.objects.get(case=case, kind=DocumentKind.VOICE)
    url = reverse("document_download", args=[case.reference, document.pk])
    for user in (alice, doctor.user):
        fetched = login(user, "en").get(url)
        assert fetched.status_code == 200
        assert fetched["Content-Type"] == "audio/webm"
        assert b"".join(fetched.streaming_content) == stored(document)  # type: ignore[attr-defined]
    page = login(doctor.user, "en").get(reverse("case_detail", args=[case.reference]))
    assert f'<audio controls preload="metadata" src="{url}"' in page.content.decode()
    assert "0:03" in page.content.decode()


def test_the_case_page_says_why_a_recording_is_refused(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = page_post(login(alice, "zh-hans"), case, audio.video_named_m4a(), name="voice.m4a")

    assert response.status_code == 400
    assert response.json() == {"ok": False, "message": "这个文件里有视频。语音消息只能发送录音。"}


@pytest.mark.parametrize("outsider", ["bob", "other_doctor"])
def test_an_outsider_can_neither_send_nor_fetch_one_from_the_pages(
    request: pytest.FixtureRequest, case: Case, alice: User, login: Callable[..., Client], outsider: str
) -> None:
    message = post(case, alice, audio.webm_opus())
    assert message.document is not None
    someone = request.getfixturevalue(outsider)
    client = login(someone.user if isinstance(someone, Professional) else someone, "en")

    assert page_post(client, case, audio.ogg_opus()).status_code == 404
    assert client.get(reverse("document_download", args=[case.reference, message.document.pk])).status_code == 404
    assert Document.objects.filter(case=case).count() == 1


def test_the_recording_is_served_in_byte_ranges_as_safari_asks_for_it(
    case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    message = post(case, alice, audio.mp4_aac(), name="voice.m4a")
    assert message.document is not None
    data = stored(message.document)
    url = reverse("document_download", args=[case.reference, message.document.pk])
    client = login(doctor.user, "en")

    first = client.get(url, HTTP_RANGE="bytes=0-1")
    middle = client.get(url, HTTP_RANGE="bytes=100-")
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    beyond = client.get(url, HTTP_RANGE=f"bytes={len(data)}-")

    assert (first.status_code, first.content, first["Content-Range"]) == (206, data[:2], f"bytes 0-1/{len(data)}")
    assert middle.status_code == 206 and middle.content == data[100:]
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert (beyond.status_code, beyond["Content-Range"]) == (416, f"bytes */{len(data)}")
    assert first["Accept-Ranges"] == "bytes" and first["Content-Type"] == "audio/mp4"
    assert first["X-Content-Type-Options"] == "nosniff"
    # One view on the timeline for the player's first piece, none for the others.
    assert case.events.filter(verb="document_viewed").count() == 1


def test_voice_messages_are_in_the_chat_not_among_the_papers(
    case: Case, alice: User, login: Callable[..., Client]
) -> None:
    post(case, alice, audio.webm_opus(), name="voice.webm")

    page = login(alice, "en").get(reverse("case_detail", args=[case.reference])).content.decode()

    documents = page.split('id="documents"', 1)[1].split("</section>", 1)[0]
    assert "voice.webm" not in documents
    assert "chat-voice" in page

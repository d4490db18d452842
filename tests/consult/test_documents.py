"""Case documents: what is refused and why, what is kept and how, who may fetch it.

Every storage test runs twice: on local private disk and on a real S3 API (moto's server, over
HTTP). "Nothing stored" means no Document row and no object in the store.

Bad names are sent to `document_add` directly: Django's multipart parser already drops folders
and non-printable characters from uploaded names before the view sees them, so the service is
where another client (admin, a future API) would meet the check.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.config import Config
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.datastructures import CaseInsensitiveMapping
from PIL import Image
from storages.backends.s3 import S3Storage

from consult import files, services
from consult.files import UploadRefused
from consult.models import Case, Document, Priority, Professional, Skill, Status, User, Verb
from tests.consult import files_corpus as corpus
from tests.s3 import MotoServer, answered_within, free_port, http_get, hung_endpoint, s3_storage

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

MiB = 1024 * 1024

# The English reasons, word for word as consult/files.py and consult/services.py give them.
TYPE_REFUSED = "This type of file is not accepted. Please send a PDF or a photo (JPEG, PNG, WebP, HEIC)."
ACTIVE_PDF = "This PDF contains scripts, attachments or actions, which are not allowed. Please upload a plain copy."
DAMAGED = "The file is damaged or incomplete. Please take the photo or scan again."
TOO_MANY_PIXELS = "The picture is too large in pixels. Please send a smaller photo."
TOO_BIG = "The file is too big. Each file may be at most 1 MB."
EMPTY = "The file is empty."
NAME_FOLDERS = "The file name must not contain folders. Please rename the file."
NAME_HIDDEN = "The file name contains hidden characters. Please rename the file."
NAME_TOO_LONG = "The file name is too long (at most 200 characters). Please rename the file."
TOO_MANY_FILES = "This case already has 2 files, the most it can hold."
CASE_FULL = "The files of this case would exceed 1 MB in all."
FINISHED = "This case is finished; files can no longer be added."
STORAGE_DOWN = "The file store cannot be reached right now. Nothing was saved. Please try again in a few minutes."

# 检查报告.pdf ("exam report"), as RFC 6266 wants it in a header.
REPORT_ZH = "检查报告.pdf"
REPORT_ZH_HEADER = "filename*=utf-8''%E6%A3%80%E6%9F%A5%E6%8A%A5%E5%91%8A.pdf"


@pytest.fixture(autouse=True)
def upload_limits(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Small limits keep the corpus small; the messages then say "1 MB".
    settings.UPLOAD_MAX_FILE_BYTES = MiB
    settings.UPLOAD_MAX_IMAGE_PIXELS = 1_000_000


@dataclass(frozen=True)
class Store:
    kind: str
    server: MotoServer | None = None
    bucket: str = ""

    @property
    def is_s3(self) -> bool:
        return self.server is not None

    def read(self, key: str) -> bytes:
        with files.storage().open(key, "rb") as handle:
            data = handle.read()
        assert isinstance(data, bytes)
        return data


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The default storage for one test: an empty private folder, or an empty private bucket."""
    if request.param == "local":
        default = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private", "base_url": None},
        }
        store = Store(kind="local")
    else:
        server: MotoServer = request.getfixturevalue("moto_s3")
        store = Store(kind="s3", server=server, bucket=server.new_bucket())
        default = s3_storage(endpoint=server.endpoint, bucket=store.bucket)
        # Speed only: S3Storage makes a new boto3 session per instance, and each test gets a new
        # instance. The session carries nothing but the credentials, which are the same.
        monkeypatch.setattr(S3Storage, "_create_session", lambda self: server.session)
    # Django drops the cached default_storage when STORAGES changes.
    settings.STORAGES = {**settings.STORAGES, "default": default}
    assert files.stored_keys() == []
    return store


def _person(request: pytest.FixtureRequest, who: str) -> User:
    someone = request.getfixturevalue(who)
    return someone.user if isinstance(someone, Professional) else someone


def upload(client: Client, case: Case, *named: tuple[str, bytes], kind: str = "exam_report") -> TestResponse:
    """POST files as the upload form's script does; each declares the type its name claims."""
    uploads = [
        SimpleUploadedFile(name, data, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
        for name, data in named
    ]
    return client.post(
        reverse("document_upload", kwargs={"reference": case.reference}),
        {"kind": kind, "files": uploads},
        HTTP_ACCEPT="application/json",
    )


def add(case: Case, uploader: User, name: str, data: bytes) -> Document:
    document, created = services.document_add(case=case, uploader=uploader, upload=io.BytesIO(data), name=name)
    assert created
    return document


def download_url(case: Case, document: Document) -> str:
    return reverse("document_download", kwargs={"reference": case.reference, "document_id": document.pk})


def fetch(storage: Store, response: TestResponse, document: Document) -> tuple[bytes, Mapping[str, str]]:
    """The bytes and headers the browser ends up with: streamed by Django from local disk, or
    fetched from the short-lived S3 link Django redirects to."""
    if not storage.is_s3:
        assert response.status_code == 200
        # Reading to the end closes the file, as a WSGI server would.
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        return body, response.headers
    assert storage.server is not None
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(f"{storage.server.endpoint}/{storage.bucket}/{document.storage_key}?")
    query = parse_qs(urlsplit(url).query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 300
    status, body, headers = http_get(url)
    assert status == 200
    return body, CaseInsensitiveMapping(dict(headers.items()))


def assert_nothing_stored(case: Case) -> None:
    assert not Document.objects.filter(case=case).exists()
    assert not case.events.filter(verb=Verb.DOCUMENT_ADDED).exists()
    assert files.stored_keys() == []


# --- refused ---------------------------------------------------------------------------------

BAD_FILES = [
    pytest.param("drawing.svg", corpus.svg_with_script, TYPE_REFUSED, id="svg-with-script"),
    pytest.param("report.pdf", corpus.html_page, TYPE_REFUSED, id="html-named-pdf"),
    pytest.param("photo.jpg", corpus.elf_executable, TYPE_REFUSED, id="executable-named-jpg"),
    pytest.param("report.pdf", corpus.pdf_with_javascript, ACTIVE_PDF, id="pdf-with-javascript"),
    pytest.param("report.pdf", corpus.pdf_with_attachment, ACTIVE_PDF, id="pdf-with-embedded-file"),
    pytest.param("photo.jpg", corpus.truncated_jpeg, DAMAGED, id="truncated-jpeg"),
    pytest.param("scan.png", corpus.pixel_bomb_png, TOO_MANY_PIXELS, id="decompression-bomb-png"),
    pytest.param("scan.png", lambda: corpus.png_of_exactly(MiB + 1), TOO_BIG, id="one-byte-over-the-limit"),
    pytest.param("empty.pdf", lambda: b"", EMPTY, id="empty-file"),
]


@pytest.mark.parametrize(("name", "build", "reason"), BAD_FILES)
def test_it_refuses_a_bad_file_with_the_reason_and_stores_nothing(
    storage: Store, case: Case, alice: User, login: Callable[..., Client],
    name: str, build: Callable[[], bytes], reason: str,
) -> None:
    response = upload(login(alice, "en"), case, (name, build()))

    assert response.status_code == 400
    assert response.json() == {"results": [{"name": name, "ok": False, "message": f"{name}: {reason}"}]}
    assert_nothing_stored(case)


BAD_NAMES = [
    pytest.param("../../private/report.pdf", NAME_FOLDERS, id="dot-dot-slash"),
    pytest.param("..\\report.pdf", NAME_FOLDERS, id="dot-dot-backslash"),
    pytest.param("report\x00.jpg.pdf", NAME_HIDDEN, id="nul"),
    # Shown as "invoiceexe.pdf", is "invoice" + RLO + "fdp.exe".
    pytest.param("invoice\u202efdp.exe", NAME_HIDDEN, id="right-to-left-override"),
    pytest.param("a" * 296 + ".pdf", NAME_TOO_LONG, id="300-characters"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_it_refuses_a_genuine_pdf_under_a_deceptive_name(
    storage: Store, case: Case, alice: User, name: str, reason: str
) -> None:
    with translation.override("en"), pytest.raises(UploadRefused) as refused:
        services.document_add(case=case, uploader=alice, upload=io.BytesIO(corpus.pdf()), name=name)

    assert refused.value.messages == [reason]
    assert_nothing_stored(case)


def test_it_accepts_a_file_of_exactly_the_size_limit(
    storage: Store, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = upload(login(alice, "en"), case, ("scan.png", corpus.png_of_exactly(MiB)))

    assert response.status_code == 200
    assert response.json()["results"][0]["ok"] is True
    assert case.documents.count() == 1


# --- accepted --------------------------------------------------------------------------------

GOOD_FILES = [
    pytest.param(REPORT_ZH, corpus.pdf, "application/pdf", REPORT_ZH, id="pdf"),
    pytest.param("IMG_0001.JPG", corpus.jpeg_with_gps, "image/jpeg", "IMG_0001.jpg", id="jpeg"),
    pytest.param("scan.png", corpus.png, "image/png", "scan.png", id="png"),
    # Named by its content, not by what the phone called it.
    pytest.param("photo.jpg", corpus.webp, "image/webp", "photo.webp", id="webp-named-jpg"),
]
PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@pytest.mark.parametrize(("name", "build", "content_type", "kept_name"), GOOD_FILES)
def test_it_keeps_a_genuine_file_under_a_key_of_its_own(
    storage: Store, case: Case, alice: User, login: Callable[..., Client],
    name: str, build: Callable[[], bytes], content_type: str, kept_name: str,
) -> None:
    data = build()

    response = upload(login(alice, "en"), case, (name, data))

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert (result["ok"], result["name"], result["duplicate"]) == (True, kept_name, False)
    assert result["message"] == f"{kept_name}: saved."
    document = case.documents.get()
    assert (document.original_name, document.content_type, document.kind) == (kept_name, content_type, "exam_report")
    assert document.uploader == alice
    # The server's key: case and random hex, never anything the user typed.
    assert re.fullmatch(rf"cases/{case.pk}/[0-9a-f]{{32}}", document.storage_key)
    assert files.stored_keys() == [document.storage_key]
    stored = storage.read(document.storage_key)
    assert len(stored) == document.size
    assert hashlib.sha256(stored).hexdigest() == document.sha256
    if content_type == "application/pdf":
        assert stored == data
    else:
        with Image.open(io.BytesIO(stored)) as image:
            assert image.format == PIL_FORMAT[content_type]
            assert image.size == (64, 48)
    assert case.events.filter(verb=Verb.DOCUMENT_ADDED, actor=alice).count() == 1


def test_it_stores_a_phone_photo_without_its_gps_position(
    storage: Store, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    data = corpus.jpeg_with_gps()
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(corpus.GPS_IFD)  # the photo does carry the home's position

    response = upload(login(alice, "en"), case, ("IMG_0002.jpg", data))

    assert response.status_code == 200
    stored = storage.read(case.documents.get().storage_key)
    with Image.open(io.BytesIO(stored)) as kept:
        assert kept.format == "JPEG"
        assert kept.getexif().get_ifd(corpus.GPS_IFD) == {}
        assert dict(kept.getexif()) == {}
    assert b"Exif\x00\x00" not in stored


def test_it_stores_the_same_bytes_once_per_case(
    storage: Store, case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    data = corpus.pdf()
    assert upload(login(alice, "en"), case, ("report.pdf", data)).status_code == 200

    response = upload(login(doctor.user, "en"), case, ("same report.pdf", data))

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert (result["ok"], result["duplicate"]) == (True, True)
    assert result["message"] == "report.pdf: this file was already on the case."
    document = case.documents.get()
    assert files.stored_keys() == [document.storage_key]


def test_it_keeps_the_good_files_when_one_among_them_is_bad(
    storage: Store, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    response = upload(
        login(alice, "en"), case,
        ("report.pdf", corpus.pdf()), ("photo.jpg", corpus.elf_executable()), ("scan.png", corpus.png()),
    )

    assert response.status_code == 400
    results = response.json()["results"]
    assert [(r["name"], r["ok"]) for r in results] == [("report.pdf", True), ("photo.jpg", False), ("scan.png", True)]
    assert results[1]["message"] == f"photo.jpg: {TYPE_REFUSED}"
    names = sorted(case.documents.values_list("original_name", flat=True))
    assert names == ["report.pdf", "scan.png"]
    assert sorted(files.stored_keys()) == sorted(case.documents.values_list("storage_key", flat=True))


def test_it_refuses_files_beyond_the_per_case_count(
    storage: Store, settings: Any, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    settings.UPLOAD_MAX_FILES_PER_CASE = 2

    response = upload(
        login(alice, "en"), case,
        ("one.pdf", corpus.pdf(title="1")), ("two.pdf", corpus.pdf(title="2")), ("three.pdf", corpus.pdf(title="3")),
    )

    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[2]["message"] == f"three.pdf: {TOO_MANY_FILES}"
    assert case.documents.count() == 2
    assert sorted(files.stored_keys()) == sorted(case.documents.values_list("storage_key", flat=True))


def test_it_refuses_a_file_that_would_overfill_the_case_and_removes_its_object(
    storage: Store, settings: Any, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    settings.UPLOAD_MAX_BYTES_PER_CASE = MiB
    # Noise does not compress: each picture stays near 600 KB after re-encoding.
    first, second = corpus.png(size=(450, 450), seed=7), corpus.png(size=(450, 450), seed=8)

    response = upload(login(alice, "en"), case, ("first.png", first), ("second.png", second))

    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False]
    assert results[1]["message"] == f"second.png: {CASE_FULL}"
    document = case.documents.get()
    assert MiB // 2 < document.size < MiB
    # The second object was written before the total was checked under the lock: it must be gone.
    assert files.stored_keys() == [document.storage_key]


@pytest.mark.parametrize("ending", [Status.CLOSED, Status.WITHDRAWN])
def test_it_refuses_uploads_to_a_finished_case(
    storage: Store, case: Case, alice: User, login: Callable[..., Client], ending: str
) -> None:
    # Straight to the end: how a case gets there is proven in test_transitions.
    Case.objects.filter(pk=case.pk).update(status=ending)

    response = upload(login(alice, "en"), case, ("report.pdf", corpus.pdf()))

    assert response.status_code == 400
    assert response.json() == {"results": [{"name": "report.pdf", "ok": False, "message": f"report.pdf: {FINISHED}"}]}
    assert_nothing_stored(case)


@pytest.mark.parametrize("outsider", ["bob", "other_doctor", "lawyer"])
def test_it_answers_404_to_an_upload_from_someone_not_on_the_case(
    storage: Store, request: pytest.FixtureRequest, case: Case, login: Callable[..., Client], outsider: str
) -> None:
    response = upload(login(_person(request, outsider), "en"), case, ("report.pdf", corpus.pdf()))

    assert response.status_code == 404
    assert_nothing_stored(case)


@pytest.mark.parametrize("down", ["local", "s3"])
def test_it_answers_503_and_writes_no_row_when_the_file_store_is_down(
    settings: Any, tmp_path: Any, case: Case, alice: User, login: Callable[..., Client], down: str
) -> None:
    if down == "s3":
        # Nothing listens on this port; one attempt, so the test does not sit through retries.
        client_config = Config(signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"})
        default = s3_storage(endpoint=f"http://127.0.0.1:{free_port()}", bucket="consult-down",
                             client_config=client_config)
    else:
        blocker = tmp_path / "private"
        blocker.write_bytes(b"a file where the folder should be")
        default = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": blocker}}
    settings.STORAGES = {**settings.STORAGES, "default": default}

    response = upload(login(alice, "en"), case, ("report.pdf", corpus.pdf()))

    assert response.status_code == 503
    assert response.json() == {
        "results": [{"name": "report.pdf", "ok": False, "message": f"report.pdf: {STORAGE_DOWN}"}]
    }
    assert not Document.objects.exists()
    assert not case.events.filter(verb=Verb.DOCUMENT_ADDED).exists()


def test_it_answers_503_within_seconds_when_the_s3_endpoint_hangs(
    settings: Any, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice, "en")
    with hung_endpoint() as endpoint:
        # The project's S3 client settings: botocore's defaults would wait minutes here.
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage(endpoint=endpoint, bucket="consult-hung")}
        with answered_within(30):
            response = upload(client, case, ("report.pdf", corpus.pdf()))

    assert response.status_code == 503
    assert response.json() == {
        "results": [{"name": "report.pdf", "ok": False, "message": f"report.pdf: {STORAGE_DOWN}"}]
    }
    assert not Document.objects.exists()


# --- downloads -------------------------------------------------------------------------------


@pytest.mark.parametrize("insider", ["alice", "doctor", "coordinator"])
def test_it_hands_the_file_to_everyone_on_the_case_and_records_who_looked(
    storage: Store, request: pytest.FixtureRequest, case: Case, alice: User,
    login: Callable[..., Client], insider: str,
) -> None:
    data = corpus.pdf()
    document = add(case, alice, "report.pdf", data)
    user = _person(request, insider)

    body, _headers = fetch(storage, login(user).get(download_url(case, document)), document)

    assert body == data
    viewed = case.events.filter(verb=Verb.DOCUMENT_VIEWED)
    assert [(event.actor_id, event.detail) for event in viewed] == [(user.pk, {"document": "report.pdf"})]


@pytest.mark.parametrize(("query", "disposition"), [("", "inline"), ("?download=1", "attachment")])
def test_it_sends_a_chinese_name_in_filename_star_and_forbids_sniffing(
    storage: Store, case: Case, alice: User, login: Callable[..., Client], query: str, disposition: str
) -> None:
    document = add(case, alice, REPORT_ZH, corpus.pdf())

    response = login(alice).get(download_url(case, document) + query)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-store"
    _body, headers = fetch(storage, response, document)
    assert headers["Content-Disposition"] == f"{disposition}; {REPORT_ZH_HEADER}"
    assert headers["Content-Type"] == "application/pdf"


@pytest.mark.parametrize("outsider", ["bob", "other_doctor", "lawyer"])
def test_it_answers_404_to_a_download_by_someone_not_on_the_case(
    storage: Store, request: pytest.FixtureRequest, case: Case, alice: User,
    login: Callable[..., Client], outsider: str,
) -> None:
    document = add(case, alice, "report.pdf", corpus.pdf())

    response = login(_person(request, outsider)).get(download_url(case, document))

    assert response.status_code == 404
    assert not case.events.filter(verb=Verb.DOCUMENT_VIEWED).exists()


def test_it_sends_an_anonymous_download_to_the_login_page(
    storage: Store, case: Case, alice: User, login: Callable[..., Client]
) -> None:
    document = add(case, alice, "report.pdf", corpus.pdf())

    response = login(None).get(download_url(case, document))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not case.events.filter(verb=Verb.DOCUMENT_VIEWED).exists()


def test_it_answers_404_to_a_document_of_another_case_under_ones_own_case(
    storage: Store, case: Case, alice: User, bob: User, respiratory: Skill, login: Callable[..., Client]
) -> None:
    document = add(case, alice, "report.pdf", corpus.pdf())
    own_case = services.case_submit(resident=bob, skill=respiratory, description="头疼。", priority=Priority.NORMAL)

    response = login(bob).get(download_url(own_case, document))

    assert response.status_code == 404
    assert not case.events.filter(verb=Verb.DOCUMENT_VIEWED).exists()


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_it_keeps_s3_objects_private_and_encrypted(storage: Store, case: Case, alice: User) -> None:
    assert storage.server is not None
    document = add(case, alice, "report.pdf", corpus.pdf())

    status, _body, _headers = http_get(f"{storage.server.endpoint}/{storage.bucket}/{document.storage_key}")

    assert status == 403
    head = storage.server.client().head_object(Bucket=storage.bucket, Key=document.storage_key)
    assert head["ServerSideEncryption"] == "AES256"


# --- sweeping --------------------------------------------------------------------------------


def test_it_sweeps_rows_without_objects_and_old_objects_without_rows(
    storage: Store, case: Case, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = add(case, alice, "kept.pdf", corpus.pdf(title="kept"))
    lost = add(case, alice, "lost.pdf", corpus.pdf(title="lost"))
    files.delete(lost.storage_key)
    orphan = f"cases/{case.pk}/{uuid.uuid4().hex}"
    files.store(orphan, b"left behind by an upload that crashed")

    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)

    # The orphan is younger than the grace: it may be an upload whose row is about to be written.
    assert out.getvalue() == (
        "1 row(s) without a file removed, 0 file(s) without a row removed\n0 parked intake file(s) removed\n"
    )
    assert list(Document.objects.values_list("pk", flat=True)) == [kept.pk]
    assert sorted(files.stored_keys()) == sorted([kept.storage_key, orphan])

    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    out = io.StringIO()
    call_command("sweep_orphans", stdout=out)

    assert out.getvalue() == (
        "0 row(s) without a file removed, 1 file(s) without a row removed\n0 parked intake file(s) removed\n"
    )
    assert files.stored_keys() == [kept.storage_key]
    assert list(Document.objects.values_list("pk", flat=True)) == [kept.pk]

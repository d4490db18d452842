"""Uploaded files: judged by their bytes, cleaned, and kept in private storage.

Nothing here trusts the client: not the file name, not the declared content type. An accepted
image is re-encoded without its metadata (phone photos carry the GPS position of the home).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import filetype
import PIL
import pillow_heif
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from consult import decode

ACCEPTED_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heic",
}
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}

# PDF names (as keys or as action types) that run code, start programs, send data out, fetch other
# files or smuggle them in: a report needs none of them.
PDF_FORBIDDEN = {
    "/JavaScript", "/JS", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/RichMediaExecute", "/XFA",
    "/ImportData", "/SubmitForm", "/GoToR", "/GoToE", "/Rendition", "/Sound", "/Movie",
}  # fmt: skip
# What a PDF may do by itself (on opening, on a page, on a field): go to a page of the same file.
PDF_SAFE_AUTOMATIC = {"/GoTo"}
# What a link the reader clicks may open: no `javascript:`, no `file:`, no `\\server\share` (which
# hands the reader's Windows credentials to that server).
PDF_LINK_SCHEMES = ("http://", "https://", "mailto:")
PDF_MAX_OBJECTS = 200_000

# Decoding a large image takes hundreds of MB (in a child process, consult/decode.py): at most this
# many at a time from one server process, so several big photos sent at once wait for each other
# instead of adding up.
_DECODE_SLOTS = threading.BoundedSemaphore(2)

logger = logging.getLogger(__name__)

# Characters that make a name lie about itself: bidi overrides and isolates ("gpj.exe" shown as
# "exe.jpg"), plus zero-width ones.
_DECEPTIVE = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200E, 0x200F, 0xFEFF)}
NAME_MAX_LENGTH = 200


class UploadRefused(ValidationError):
    """A file we do not keep; the message tells the user why, in their language."""


class StorageUnavailable(Exception):
    """The file store cannot be reached; the user should try again later."""


class ScannerUnavailable(StorageUnavailable):
    """The virus scanner is required but cannot be reached: nothing is kept, try again later.
    A StorageUnavailable, so every path that answers "try again later" (503) handles it."""


@dataclass(frozen=True)
class CheckedFile:
    data: bytes
    content_type: str
    sha256: str
    name: str
    # Of the bytes as they arrived (images are re-encoded, so `sha256` differs for them).
    received_sha256: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


def clean_name(raw: str) -> str:
    """The name shown to people. Refuses names that hide a path, control characters or a
    direction override, rather than guessing what was meant."""
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        return "file"
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise UploadRefused(_("The file name must not contain folders. Please rename the file."), code="name")
    if any(unicodedata.category(ch) == "Cc" for ch in name) or _DECEPTIVE & set(name):
        raise UploadRefused(_("The file name contains hidden characters. Please rename the file."), code="name")
    if len(name) > NAME_MAX_LENGTH:
        raise UploadRefused(
            _("The file name is too long (at most %(n)d characters). Please rename the file.")
            % {"n": NAME_MAX_LENGTH},
            code="name",
        )
    return name


def _read_limited(upload: IO[bytes], limit: int) -> bytes:
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(
            _("The file is too big. Each file may be at most %(mb)d MB.") % {"mb": limit // (1024 * 1024)},
            code="too_big",
        )
    return data


def _too_many_pixels() -> UploadRefused:
    return UploadRefused(_("The picture is too large in pixels. Please send a smaller photo."), code="too_many_pixels")


def _damaged() -> UploadRefused:
    return UploadRefused(_("The file is damaged or incomplete. Please take the photo or scan again."), code="damaged")


def _too_complex() -> UploadRefused:
    return UploadRefused(
        _("The picture takes too long or too much memory to process. Please send a smaller photo or a screenshot."),
        code="image_too_complex",
    )


# The child that decodes (consult/decode.py) is started without site processing: it is told where
# Pillow and pillow-heif live.
_DECODER = str(Path(__file__).with_name("decode.py"))
_DECODER_PATHS = sorted({str(Path(module.__file__ or "").parent.parent) for module in (PIL, pillow_heif)})


def _decode_in_child(data: bytes, content_type: str) -> bytes:
    """The picture cleaned by consult/decode.py in a process of its own, bounded in address space
    (UPLOAD_DECODE_MEMORY_MB) and time (UPLOAD_DECODE_SECONDS, then killed), or UploadRefused. Runs
    on the request's thread (a sync view, never the event loop), at most _DECODE_SLOTS at a time."""
    command = [
        sys.executable, "-I", "-S", _DECODER, content_type, str(settings.UPLOAD_MAX_IMAGE_PIXELS),
        str(settings.UPLOAD_DECODE_MEMORY_MB * 1024 * 1024), *_DECODER_PATHS,
    ]  # fmt: skip
    # One malloc arena: each thread's own would reserve 64 MB of the address space the limit counts.
    env = {"MALLOC_ARENA_MAX": "1", "PATH": os.environ.get("PATH", "")}
    with _DECODE_SLOTS:
        try:
            done = subprocess.run(  # noqa: S603 - our own script and arguments, no shell
                command, input=data, capture_output=True, timeout=settings.UPLOAD_DECODE_SECONDS, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            logger.warning("Picture refused: not decoded within %s s", settings.UPLOAD_DECODE_SECONDS)
            raise _too_complex() from None
    if done.returncode == 0 and done.stdout:
        return done.stdout
    if done.returncode == decode.TOO_MANY_PIXELS:
        raise _too_many_pixels()
    if done.returncode == decode.DAMAGED:
        raise _damaged()
    # Out of memory, or killed (a decoder that crashed on a hostile file): no 500, a clear reason.
    logger.warning("Picture refused: decoder ended with %s: %s", done.returncode, done.stderr[-500:])
    raise _too_complex()


def _clean_image(data: bytes, content_type: str) -> tuple[bytes, str]:
    """Check the pixel count from the header, then decode the whole image in a bounded child and
    re-encode it without metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise _damaged() from None
    if width * height > settings.UPLOAD_MAX_IMAGE_PIXELS:
        raise _too_many_pixels()
    cleaned = _decode_in_child(data, content_type)
    return cleaned, "image/jpeg" if content_type == "image/jpeg" else content_type


def _active_pdf() -> UploadRefused:
    return UploadRefused(
        _("This PDF contains scripts, attachments or actions, which are not allowed. Please upload a plain copy."),
        code="active_pdf",
    )


def _value(obj: Any, key: str) -> Any:
    value = obj.get(key)
    return value.get_object() if value is not None else None


def _is_active(obj: Any) -> bool:
    """Whether one dictionary of the PDF names something forbidden or acts on its own."""
    from pypdf.generic import DictionaryObject

    if PDF_FORBIDDEN & {str(k) for k in obj}:
        return True
    action = str(_value(obj, "/S") or "")
    if action in PDF_FORBIDDEN:
        return True
    if action == "/URI" and not str(_value(obj, "/URI") or "").strip().lower().startswith(PDF_LINK_SCHEMES):
        return True
    automatic = [_value(obj, "/OpenAction")]
    triggers = _value(obj, "/AA")
    if isinstance(triggers, DictionaryObject):
        automatic += [_value(triggers, str(k)) for k in triggers]
    # A destination array only says "open at this page"; an action must stay inside the file.
    return any(
        isinstance(todo, DictionaryObject) and (str(_value(todo, "/S")) not in PDF_SAFE_AUTOMATIC or "/Next" in todo)
        for todo in automatic
    )


def _walk_pdf(reader: Any) -> tuple[bool, list[Any]]:
    """Walk every object reachable from the trailer (bounded: PDF_MAX_OBJECTS, no recursion).
    Returns whether something in it is forbidden or acts on its own, and its JPEG images."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, StreamObject

    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    jpegs: list[Any] = []
    visited = 0
    while stack:
        obj = stack.pop()
        visited += 1
        if visited > PDF_MAX_OBJECTS:
            raise _pdf_too_complex()
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            if _is_active(obj):
                return True, []
            if isinstance(obj, StreamObject) and str(_value(obj, "/Subtype")) == "/Image":
                filters = _value(obj, "/Filter")
                names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)]
                if names == ["/DCTDecode"]:
                    jpegs.append(obj)
            stack.extend(obj.values())
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
        elif isinstance(obj, NameObject) and str(obj) in PDF_FORBIDDEN:
            return True, []
    return False, jpegs


def _jpeg_without_metadata(data: bytes) -> bytes | None:
    """The JPEG's segments without EXIF/XMP (APP1), the other application segments but the colour
    ones (JFIF APP0, ICC APP2, Adobe APP14) and comments; the coded picture is copied untouched, so
    nothing is decoded. None when there is nothing to drop or the segments cannot be followed."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = bytearray(b"\xff\xd8")
    at, dropped = 2, False
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xDA:  # start of scan: the picture itself, to the end
            out += data[at:]
            return bytes(out) if dropped else None
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        segment = data[at:end]
        keep = not (0xE1 <= marker <= 0xEF or marker == 0xFE) or marker == 0xEE or (
            marker == 0xE2 and segment[4:16] == b"ICC_PROFILE\0"
        )
        if keep:
            out += segment
        else:
            dropped = True
        at = end
    return None


def _pdf_without_photo_metadata(reader: Any, jpegs: list[Any]) -> bytes | None:
    """The PDF rewritten with its JPEG images' metadata (a phone photo's GPS position) dropped;
    None when none carries any."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, NumberObject

    changed = False
    for image in jpegs:
        cleaned = _jpeg_without_metadata(image._data)
        if cleaned is not None:
            image._data = cleaned
            image[NameObject("/Length")] = NumberObject(len(cleaned))
            changed = True
    if not changed:
        return None
    out = io.BytesIO()
    PdfWriter(clone_from=reader).write(out)
    return out.getvalue()


def _pdf_too_complex() -> UploadRefused:
    return UploadRefused(
        _(
            "This PDF is built in a way that cannot be checked safely (too deeply nested, too large "
            "once unpacked, or with overlong parts). Please print it to a new PDF, or send photos of its pages."
        ),
        code="pdf_too_complex",
    )


def _pdf_password() -> UploadRefused:
    return UploadRefused(
        _("The PDF is protected by a password. Please upload a copy without a password."), code="encrypted"
    )


def _pdf_unsupported() -> UploadRefused:
    return UploadRefused(
        _(
            "This PDF uses a kind of protection or a feature that cannot be checked. Please save or print "
            "it to a new PDF without protection and upload that copy."
        ),
        code="pdf_unsupported",
    )


def _check_pdf(data: bytes) -> bytes:
    """The PDF as it will be kept (rewritten only to drop photo metadata), or UploadRefused."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        # Permissions-only protection (an owner password, an empty user password) opens without
        # asking anyone for anything: such a PDF is read like any other.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise _pdf_password()
        if len(reader.pages) == 0:
            raise _damaged()
        active, jpegs = _walk_pdf(reader)
        cleaned = None if active else _pdf_without_photo_metadata(reader, jpegs)
    except UploadRefused:
        raise
    except LimitReachedError:
        raise _pdf_too_complex() from None
    except FileNotDecryptedError:
        raise _pdf_password() from None
    except NotImplementedError:
        raise _pdf_unsupported() from None
    except RecursionError:
        raise _pdf_too_complex() from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError):
        raise _damaged() from None
    except Exception:
        # A hostile file reaching a corner of the parser nobody foresaw: a refusal, never a 500.
        logger.warning("PDF refused after an unexpected parser error", exc_info=True)
        raise _damaged() from None
    if active:
        raise _active_pdf()
    return data if cleaned is None else cleaned


def _heic_to_jpeg(data: bytes) -> bytes:
    try:
        # open_heif reads the container's header only; the pixels are decoded by the child.
        heif = pillow_heif.open_heif(io.BytesIO(data))
        width, height = heif.size
    except (ValueError, RuntimeError, OSError):
        raise _damaged() from None
    if width * height > settings.UPLOAD_MAX_IMAGE_PIXELS:
        raise _too_many_pixels()
    return _decode_in_child(data, "image/heic")


@dataclass(frozen=True)
class Received:
    """An upload read in full (within the size limit) and not yet judged."""

    data: bytes
    name: str
    sha256: str


def receive(upload: IO[bytes], name: str) -> Received:
    """Read one upload and hash it: cheap, so a file already on the case is known before any
    decoding. Raises UploadRefused for a bad name, an empty file or one over the size limit."""
    display_name = clean_name(name)
    data = _read_limited(upload, settings.UPLOAD_MAX_FILE_BYTES)
    if not data:
        raise UploadRefused(_("The file is empty."), code="empty")
    return Received(data=data, name=display_name, sha256=hashlib.sha256(data).hexdigest())


def check_upload(upload: IO[bytes], name: str) -> CheckedFile:
    """Read and judge one uploaded file. Raises UploadRefused with the reason, ScannerUnavailable
    when the required virus scan cannot be done."""
    return check_received(receive(upload, name))


def check_received(received: Received) -> CheckedFile:
    data = received.data
    kind = filetype.guess(data)
    content_type = kind.mime if kind else ""
    if content_type not in ACCEPTED_TYPES:
        raise UploadRefused(
            _("This type of file is not accepted. Please send a PDF or a photo (JPEG, PNG, WebP, HEIC)."),
            code="type",
        )
    scan(data)
    if content_type in ("image/heic", "image/heif"):
        data, content_type = _heic_to_jpeg(data), "image/jpeg"
    if content_type == "application/pdf":
        data = _check_pdf(data)
    else:
        data, content_type = _clean_image(data, content_type)
    extension = ACCEPTED_TYPES[content_type]
    stem = received.name.rsplit(".", 1)[0] if "." in received.name else received.name
    return CheckedFile(
        data=data,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        name=f"{stem}.{extension}",
        received_sha256=received.sha256,
    )


# --- voice messages ------------------------------------------------------------------------

# What phones' browsers record: Chromium WebM with Opus, Safari (iOS) MP4 with AAC, Firefox Ogg with
# Opus. The first bytes choose the demuxer FFmpeg is forced to use, so a file never picks its own
# (an HLS playlist or a concat script would make FFmpeg open other files or addresses).
AUDIO_TYPES = {"audio/webm": "webm", "audio/mp4": "m4a", "audio/ogg": "ogg"}
_AUDIO_SNIFFED = {
    "video/webm": ("matroska", "audio/webm", "opus"),
    "audio/webm": ("matroska", "audio/webm", "opus"),
    "video/mp4": ("mp4", "audio/mp4", "aac"),
    "audio/mp4": ("mp4", "audio/mp4", "aac"),
    "audio/m4a": ("mp4", "audio/mp4", "aac"),
    "audio/x-m4a": ("mp4", "audio/mp4", "aac"),
    "audio/ogg": ("ogg", "audio/ogg", "opus"),
}
# A recording whose header promises more than this beyond what decodes is cut short.
_TRUNCATED_SLACK_SECONDS = 0.5
# What FFmpeg's demuxers say of a file that ends inside a packet or an element.
_CUT_SHORT = (b"ended prematurely", b"partial file", b"Truncated", b"truncated")


@dataclass(frozen=True)
class CheckedAudio:
    file: CheckedFile
    duration_ms: int


def _audio_type() -> UploadRefused:
    return UploadRefused(
        _("This is not a voice recording the chat can play. Please record it again with the microphone button."),
        code="audio_type",
    )


def _audio_video() -> UploadRefused:
    return UploadRefused(
        _("This file contains video. Only voice recordings can be sent as voice messages."), code="audio_video"
    )


def _audio_too_long() -> UploadRefused:
    return UploadRefused(
        _("The recording is too long. A voice message may be at most %(minutes)d minutes.")
        % {"minutes": max(1, settings.VOICE_MAX_SECONDS // 60)},
        code="audio_too_long",
    )


def _audio_damaged() -> UploadRefused:
    return UploadRefused(
        _("The recording is damaged or incomplete. Please record it again."), code="audio_damaged"
    )


def _run_ffmpeg_tool(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    """One FFmpeg tool on a hostile file: its own process, bounded in address space (prlimit) and
    time (killed after UPLOAD_DECODE_SECONDS), never reading standard input, sharing the decode
    slots with pictures."""
    memory = settings.UPLOAD_DECODE_MEMORY_MB * 1024 * 1024
    env = {"PATH": os.environ.get("PATH", "")}
    with _DECODE_SLOTS:
        try:
            return subprocess.run(  # noqa: S603 - fixed programs and arguments, no shell
                ["prlimit", f"--as={memory}", "--", *command],  # noqa: S607 - Debian's tools on PATH
                capture_output=True, timeout=settings.UPLOAD_DECODE_SECONDS, env=env, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            logger.warning("Recording refused: not read within %s s", settings.UPLOAD_DECODE_SECONDS)
            raise _audio_damaged() from None
        except FileNotFoundError:
            # FFmpeg missing is the server's fault, never the resident's file: no 500 page either.
            logger.error("Recording not checked: ffprobe/ffmpeg (Debian package ffmpeg) is not installed")
            raise StorageUnavailable("ffmpeg is not installed") from None


def _probe_audio(path: str, demuxer: str) -> dict[str, Any]:
    done = _run_ffmpeg_tool([
        "ffprobe", "-v", "error", "-hide_banner", "-protocol_whitelist", "file", "-f", demuxer,
        "-show_entries", "format=format_name,duration:stream=codec_type,codec_name", "-of", "json", path,
    ])  # fmt: skip
    if done.returncode != 0:
        raise _audio_damaged()
    try:
        found = json.loads(done.stdout)
    except ValueError:
        raise _audio_damaged() from None
    return found if isinstance(found, dict) else {}


def _decoded_seconds(path: str, demuxer: str) -> float:
    """How long the first audio stream lasts when decoded to its end (at most the limit and one
    second more): what a phone plays, whatever the header says. Any decoding error refuses it."""
    done = _run_ffmpeg_tool([
        "ffmpeg", "-v", "warning", "-hide_banner", "-nostdin", "-nostats", "-xerror",
        "-protocol_whitelist", "file", "-f", demuxer, "-i", path,
        "-map", "0:a:0", "-t", str(settings.VOICE_MAX_SECONDS + 1), "-f", "null", "-progress", "pipe:1", "-",
    ])  # fmt: skip
    # -xerror: a packet that does not decode stops it. A file cut short mid-packet only earns a
    # warning from the demuxer; other warnings (timestamps that repeat, as browsers' recordings
    # have) are not the listener's concern.
    if done.returncode != 0 or any(marker in done.stderr for marker in _CUT_SHORT):
        raise _audio_damaged()
    times = [
        int(line.split(b"=", 1)[1])
        for line in done.stdout.splitlines()
        if line.startswith(b"out_time_us=") and line.split(b"=", 1)[1].strip().isdigit()
    ]
    if not times:
        raise _audio_damaged()
    return max(times) / 1_000_000


# The muxer each accepted container is written back with, and its options: MP4 with its index
# first, so a player starts before the whole file has arrived.
_AUDIO_MUXERS = {"audio/webm": ["-f", "webm"], "audio/mp4": ["-f", "mp4", "-movflags", "+faststart"],
                 "audio/ogg": ["-f", "ogg"]}  # fmt: skip


def _remuxed(path: str, demuxer: str, content_type: str) -> bytes:
    """The recording's one audio stream copied into a new file of the same kind (nothing decoded
    again): without its metadata (a phone's voice memo is named after the street it was recorded
    in) and, for a browser's WebM, with the length and index a player needs to show and seek."""
    out = f"{path}.out"
    try:
        done = _run_ffmpeg_tool([
            "ffmpeg", "-v", "error", "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-f", demuxer,
            "-i", path, "-map", "0:a:0", "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1",
            "-fflags", "+bitexact", *_AUDIO_MUXERS[content_type], "-y", out,
        ])  # fmt: skip
        if done.returncode != 0:
            raise _audio_damaged()
        return Path(out).read_bytes()
    finally:
        Path(out).unlink(missing_ok=True)


def check_audio(received: Received) -> CheckedAudio:
    """Judge a voice recording by its bytes: a container and codec phones record, one audio stream
    and no video, no longer than VOICE_MAX_SECONDS, decodable to its end. Raises UploadRefused
    with the reason, ScannerUnavailable or StorageUnavailable (nothing to check it with)."""
    kind = filetype.guess(received.data)
    sniffed = _AUDIO_SNIFFED.get(kind.mime if kind else "")
    if sniffed is None:
        raise _audio_type()
    demuxer, content_type, codec = sniffed
    scan(received.data)
    with tempfile.NamedTemporaryFile(prefix="voice-", suffix=f".{AUDIO_TYPES[content_type]}") as handle:
        handle.write(received.data)
        handle.flush()
        probed = _probe_audio(handle.name, demuxer)
        streams = probed.get("streams") or []
        kinds = [str(stream.get("codec_type")) for stream in streams if isinstance(stream, dict)]
        # A cover picture in an MP4 is a video stream too: refused like any video.
        if "video" in kinds:
            raise _audio_video()
        audio = [stream for stream in streams if isinstance(stream, dict) and stream.get("codec_type") == "audio"]
        if len(audio) != 1 or set(kinds) - {"audio"}:
            raise _audio_type()
        if audio[0].get("codec_name") != codec:
            raise _audio_type()
        try:
            promised = float((probed.get("format") or {}).get("duration") or "nan")
        except (TypeError, ValueError):
            promised = float("nan")
        # Refused from the header when it says so: a 2-hour recording is never decoded.
        if promised > settings.VOICE_MAX_SECONDS:
            raise _audio_too_long()
        seconds = _decoded_seconds(handle.name, demuxer)
        if seconds > settings.VOICE_MAX_SECONDS:
            raise _audio_too_long()
        if seconds <= 0 or promised - seconds > _TRUNCATED_SLACK_SECONDS:
            raise _audio_damaged()
        data = _remuxed(handle.name, demuxer, content_type)
    stem = received.name.rsplit(".", 1)[0] if "." in received.name else received.name
    checked = CheckedFile(
        data=data,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        name=f"{stem}.{AUDIO_TYPES[content_type]}",
        received_sha256=received.sha256,
    )
    return CheckedAudio(file=checked, duration_ms=round(seconds * 1000))


# --- malware scan --------------------------------------------------------------------------


def _clamd_client() -> Any:
    import clamd

    address = settings.CLAMAV_SOCKET
    timeout = settings.CLAMAV_TIMEOUT
    if address.startswith("tcp://"):
        host, _sep, port = address.removeprefix("tcp://").rpartition(":")
        return clamd.ClamdNetworkSocket(host=host, port=int(port), timeout=timeout)
    return clamd.ClamdUnixSocket(path=address, timeout=timeout)


def scan(data: bytes) -> None:
    """Ask ClamAV about the bytes (when settings.CLAMAV_SOCKET is set). Raises UploadRefused when
    it finds malware; ScannerUnavailable when it cannot answer and CLAMAV_REQUIRED is on (off, the
    upload goes on unscanned and the outage is logged)."""
    if not settings.CLAMAV_SOCKET:
        return
    import clamd

    try:
        status, signature = _clamd_client().instream(io.BytesIO(data))["stream"]
    except (clamd.ClamdError, OSError, KeyError, ValueError) as error:
        status, signature = "ERROR", str(error)
    if status == "FOUND":
        logger.warning("upload refused: ClamAV found %s", signature)
        raise UploadRefused(
            _("This file contains a virus or other harmful content (%(name)s) and was not kept.")
            % {"name": signature},
            code="infected",
        )
    if status != "OK":
        if settings.CLAMAV_REQUIRED:
            raise ScannerUnavailable(f"clamd at {settings.CLAMAV_SOCKET}: {signature}")
        logger.warning("upload not scanned: clamd at %s answered %s %s", settings.CLAMAV_SOCKET, status, signature)


SCANNER_DOWN = _(
    "The virus scanner is unavailable right now, so the file was not kept. Please try again in a few minutes."
)


def storage() -> Storage:
    return default_storage


def storage_is_remote() -> bool:
    # Every Storage has a `path` method; remote ones (S3) raise NotImplementedError from it.
    try:
        storage().path("")
    except NotImplementedError:
        return True
    return False


def _storage_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:  # pragma: no cover - boto3 is a pinned dependency
        pass
    return tuple(errors)


def store(key: str, data: bytes) -> None:
    try:
        saved = storage().save(key, ContentFile(data))
    except _storage_errors() as error:
        raise StorageUnavailable(str(error)) from error
    if saved != key:
        raise StorageUnavailable(f"storage renamed {key} to {saved}")


def delete(key: str) -> None:
    try:
        storage().delete(key)
    except _storage_errors() as error:
        raise StorageUnavailable(str(error)) from error


def open_stored(key: str) -> IO[bytes]:
    try:
        return storage().open(key, "rb")
    except FileNotFoundError:
        raise
    except _storage_errors() as error:
        raise StorageUnavailable(str(error)) from error


def presigned_url(key: str, *, filename_header: str, content_type: str) -> str:
    """A short-lived URL straight to the object (remote storage only)."""
    try:
        return storage().url(  # type: ignore[call-arg]
            key,
            parameters={"ResponseContentDisposition": filename_header, "ResponseContentType": content_type},
            expire=settings.DOWNLOAD_URL_SECONDS,
        )
    except _storage_errors() as error:
        raise StorageUnavailable(str(error)) from error


def stored_keys(prefix: str = "cases") -> list[str]:
    """Every object key under `prefix`, walking folders."""
    keys: list[str] = []
    pending = [prefix]
    while pending:
        folder = pending.pop()
        try:
            dirs, files = storage().listdir(folder)
        except FileNotFoundError:
            continue
        except _storage_errors() as error:
            raise StorageUnavailable(str(error)) from error
        keys += [f"{folder}/{f}" for f in files]
        pending += [f"{folder}/{d}" for d in dirs]
    return keys

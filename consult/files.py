"""Uploaded files: judged by their bytes, cleaned, and kept in private storage.

Nothing here trusts the client: not the file name, not the declared content type. An accepted
image is re-encoded without its metadata (phone photos carry the GPS position of the home).
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO, Any

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heic",
}
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}

# PDF names that run code, start programs or smuggle files: a report needs none of them.
PDF_FORBIDDEN = {"/JavaScript", "/JS", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA"}
PDF_MAX_OBJECTS = 200_000

# Characters that make a name lie about itself: bidi overrides and isolates ("gpj.exe" shown as
# "exe.jpg"), plus zero-width ones.
_DECEPTIVE = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200E, 0x200F, 0xFEFF)}
NAME_MAX_LENGTH = 200


class UploadRefused(ValidationError):
    """A file we do not keep; the message tells the user why, in their language."""


class StorageUnavailable(Exception):
    """The file store cannot be reached; the user should try again later."""


@dataclass(frozen=True)
class CheckedFile:
    data: bytes
    content_type: str
    sha256: str
    name: str

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


def _clean_image(data: bytes, content_type: str) -> tuple[bytes, str]:
    """Decode the whole image inside the pixel limit and re-encode it without metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > settings.UPLOAD_MAX_IMAGE_PIXELS:
                    raise _too_many_pixels()
                image.load()
                # Keep the way the phone held the camera, then drop EXIF (GPS, device, time).
                upright = ImageOps.exif_transpose(image)
                fmt = IMAGE_FORMATS.get(content_type, "JPEG")
                if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
                    upright = upright.convert("RGB")
                out = io.BytesIO()
                options: dict[str, Any] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
                upright.save(out, format=fmt, **options)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except UploadRefused:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise _damaged() from None
    return out.getvalue(), "image/jpeg" if fmt == "JPEG" else content_type


def _pdf_names(reader: Any) -> set[str]:
    """Every dictionary key and name value reachable from the trailer, decompressed."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    seen: set[tuple[int, int]] = set()
    names: set[str] = set()
    stack: list[Any] = [reader.trailer]
    visited = 0
    while stack:
        obj = stack.pop()
        visited += 1
        if visited > PDF_MAX_OBJECTS:
            raise _damaged()
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            for k, v in obj.items():
                names.add(str(k))
                stack.append(v)
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
        elif isinstance(obj, NameObject):
            names.add(str(obj))
    return names


def _check_pdf(data: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UploadRefused(
                _("The PDF is protected by a password. Please upload a copy without a password."), code="encrypted"
            )
        if len(reader.pages) == 0:
            raise _damaged()
        names = _pdf_names(reader)
    except UploadRefused:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        raise _damaged() from None
    if names & PDF_FORBIDDEN:
        raise UploadRefused(
            _("This PDF contains scripts, attachments or actions, which are not allowed. Please upload a plain copy."),
            code="active_pdf",
        )


def _heic_to_jpeg(data: bytes) -> bytes:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data))
        image = heif.to_pillow()
    except (ValueError, RuntimeError, OSError):
        raise _damaged() from None
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def check_upload(upload: IO[bytes], name: str) -> CheckedFile:
    """Read and judge one uploaded file. Raises UploadRefused with the reason."""
    display_name = clean_name(name)
    data = _read_limited(upload, settings.UPLOAD_MAX_FILE_BYTES)
    if not data:
        raise UploadRefused(_("The file is empty."), code="empty")
    kind = filetype.guess(data)
    content_type = kind.mime if kind else ""
    if content_type not in ACCEPTED_TYPES:
        raise UploadRefused(
            _("This type of file is not accepted. Please send a PDF or a photo (JPEG, PNG, WebP, HEIC)."),
            code="type",
        )
    if content_type in ("image/heic", "image/heif"):
        data, content_type = _heic_to_jpeg(data), "image/jpeg"
    if content_type == "application/pdf":
        _check_pdf(data)
    else:
        data, content_type = _clean_image(data, content_type)
    extension = ACCEPTED_TYPES[content_type]
    stem = display_name.rsplit(".", 1)[0] if "." in display_name else display_name
    return CheckedFile(
        data=data,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        name=f"{stem}.{extension}",
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

"""Decode one uploaded picture and write it back without its metadata, in a process of its own.

Run by consult/files.py as `python -I -S consult/decode.py MODE CONTENT_TYPE MAX_PIXELS MEMORY_BYTES
SITE_DIR...`, the picture on standard input, the cleaned picture on standard output. The child caps
its own address space before reading a byte, and the parent kills it after the decode time limit:
a picture built to take minutes or gigabytes to decode costs that child alone, never the server.

Imports nothing from the project, Django or even `typing` (started with -S, it finds Pillow through
SITE_DIR): a decode starts in a few tens of milliseconds.

Exit codes: 0 cleaned, 2 damaged, 3 too many pixels, 4 out of memory.
"""

from __future__ import annotations

import io
import resource
import sys
import warnings

DAMAGED = 2
TOO_MANY_PIXELS = 3
OUT_OF_MEMORY = 4
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def clean(data: bytes, content_type: str, max_pixels: int) -> bytes:
    """The picture re-encoded in its own format (HEIC as JPEG), upright, with only its colour profile."""
    from PIL import Image, ImageOps

    if content_type in ("image/heic", "image/heif"):
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data))
        width, height = heif.size
        if width * height > max_pixels:
            sys.exit(TOO_MANY_PIXELS)
        out = io.BytesIO()
        heif.to_pillow().convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                sys.exit(TOO_MANY_PIXELS)
            image.load()
            # Keep the way the phone held the camera, then drop EXIF (GPS, device, time); in place:
            # a copy would hold a second full-size picture.
            ImageOps.exif_transpose(image, in_place=True)
            fmt = IMAGE_FORMATS.get(content_type, "JPEG")
            upright = image.convert("RGB") if fmt == "JPEG" and image.mode not in ("RGB", "L") else image
            # Pillow writes back what `info` holds: the JPEG comment (COM) and XMP (which can carry
            # the GPS position too). Only the colour profile is worth keeping.
            upright.info = {k: v for k, v in upright.info.items() if k == "icc_profile"}
            out = io.BytesIO()
            options: dict[str, int] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
            upright.save(out, format=fmt, **options)
            return out.getvalue()


def main(argv: list[str]) -> int:
    content_type, max_pixels, memory = argv[1], int(argv[2]), int(argv[3])
    sys.path[:0] = argv[4:]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    data = sys.stdin.buffer.read()
    try:
        from PIL import Image, UnidentifiedImageError

        try:
            cleaned = clean(data, content_type, max_pixels)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return TOO_MANY_PIXELS
        except MemoryError:
            return OUT_OF_MEMORY
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError):
            return DAMAGED
    except MemoryError:
        return OUT_OF_MEMORY
    sys.stdout.buffer.write(cleaned)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

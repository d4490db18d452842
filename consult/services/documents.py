"""Documents on a case: uploads checked by their bytes, generated summaries, their verification."""

from __future__ import annotations

import hashlib
import io
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from consult import files, intake
from consult.domains import domain_of
from consult.errors import CaseError, NotAllowed, WrongState
from consult.files import UploadRefused
from consult.models import (
    Case,
    Document,
    DocumentKind,
    Status,
    User,
    Verb,
)
from consult.services.timeline import record_event

# --- documents -----------------------------------------------------------------------------


def can_upload(case: Case, user: User) -> bool:
    on_case = case.resident_id == user.pk or (case.assignee is not None and case.assignee.user_id == user.pk)
    return (on_case or user.is_coordinator) and case.status not in (Status.CLOSED, Status.WITHDRAWN)


def _check_case_room(case: Case, extra_bytes: int) -> None:
    documents = case.documents.exclude(kind=DocumentKind.SUMMARY)
    # Voice messages take room in bytes but not a place among the case's files: a conversation holds many.
    totals = documents.aggregate(n=Count("pk", filter=~Q(kind=DocumentKind.VOICE)), size=Sum("size"))
    if totals["n"] >= settings.UPLOAD_MAX_FILES_PER_CASE:
        raise UploadRefused(
            _("This case already has %(n)d files, the most it can hold.") % {"n": settings.UPLOAD_MAX_FILES_PER_CASE},
            code="too_many_files",
        )
    if (totals["size"] or 0) + extra_bytes > settings.UPLOAD_MAX_BYTES_PER_CASE:
        raise UploadRefused(
            _("The files of this case would exceed %(mb)d MB in all.")
            % {"mb": settings.UPLOAD_MAX_BYTES_PER_CASE // (1024 * 1024)},
            code="case_full",
        )


def document_add(
    *, case: Case, uploader: User, upload: IO[bytes], name: str, kind: str = DocumentKind.OTHER
) -> tuple[Document, bool]:
    """Check one uploaded file by its bytes and keep it on the case.

    Returns the document and whether it is new: the same bytes sent again to the same case give
    back the document already stored. Raises UploadRefused (with the reason for the user) or
    StorageUnavailable (nothing was written).
    """
    # Finished first: can_upload is also False for a finished case, and its reason would mislead.
    if case.status in (Status.CLOSED, Status.WITHDRAWN):
        raise WrongState(_("This case is finished; files can no longer be added."))
    if not can_upload(case, uploader):
        raise NotAllowed(_("Only the people on this case can add files to it."))
    if kind not in DocumentKind.values or kind in (DocumentKind.SUMMARY, DocumentKind.VOICE):
        raise UploadRefused(_("Choose what kind of document this is."), code="kind")
    _check_case_room(case, 0)
    received = files.receive(upload, name)
    # Before the scan and the decoding, the expensive part: the same bytes again cost one query.
    existing = case.documents.filter(Q(received_sha256=received.sha256) | Q(sha256=received.sha256)).first()
    if existing is not None:
        return existing, False
    return _keep(case, uploader, files.check_received(received), kind)


def _keep(
    case: Case,
    uploader: User | None,
    checked: files.CheckedFile,
    kind: str,
    verification_code: str | None = None,
    duration_ms: int | None = None,
) -> tuple[Document, bool]:
    """Store checked bytes and their row; the object first, so a row never points at nothing,
    and outside the transaction, so no lock is held while the file store works."""
    existing = case.documents.filter(sha256=checked.sha256).first()
    if existing is not None:
        return existing, False
    key = f"cases/{case.pk}/{uuid.uuid4().hex}"
    files.store(key, checked.data)
    document: Document | None = None
    try:
        with transaction.atomic():
            locked = Case.objects.select_for_update().get(pk=case.pk)
            existing = locked.documents.filter(sha256=checked.sha256).first()
            if existing is None:
                if kind != DocumentKind.SUMMARY:
                    _check_case_room(locked, checked.size)
                document = _document_row(locked, uploader, checked, kind, key, verification_code, duration_ms)
    except BaseException:
        # No row will point at the object: remove it now (sweep_orphans catches any we miss).
        _forget([key])
        raise
    if document is None:  # the same bytes arrived at the same moment by another request
        _forget([key])
        assert existing is not None
        return existing, False
    return document, True


def _document_row(
    case: Case,
    uploader: User | None,
    checked: files.CheckedFile,
    kind: str,
    key: str,
    verification_code: str | None = None,
    duration_ms: int | None = None,
) -> Document:
    """The row (and timeline event) for bytes already stored under `key`. Call in a transaction."""
    document = Document(
        case=case,
        uploader=uploader,
        kind=kind,
        storage_key=key,
        original_name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        received_sha256=checked.received_sha256,
        verification_code=verification_code,
        duration_ms=duration_ms,
    )
    document.full_clean(exclude=["case", "uploader"])
    document.save()
    verb = Verb.SUMMARY_GENERATED if kind == DocumentKind.SUMMARY else Verb.DOCUMENT_ADDED
    record_event(case, verb, uploader, document=document.original_name, kind=kind)
    return document


def _forget(keys: list[str]) -> None:
    """Remove objects no row points at, as far as the store lets us: at its first failure stop
    (a store that is down would make each try wait); sweep_orphans removes what is left."""
    for key in keys:
        try:
            files.delete(key)
        except files.StorageUnavailable:
            return


def document_record_view(*, document: Document, user: User) -> None:
    record_event(document.case, Verb.DOCUMENT_VIEWED, user, document=document.original_name)


def documents_sweep_orphans(*, grace: timedelta = timedelta(hours=1)) -> tuple[int, int]:
    """Remove rows whose object is gone and objects no row points at (older than `grace`, so
    uploads in flight are left alone). Returns (rows removed, objects removed).

    "Missing from the store" must mean missing for every machine: with files on local disk and
    several machines, each machine's sweep would remove the rows of files on the others' disks.
    That setup cannot start: with DEBUG off, local files need SINGLE_MACHINE=true (settings.py;
    tests/consult/test_machines.py), so the store here is either this one machine's disk or S3,
    which every machine sees whole."""
    store = files.storage()
    lost_rows = 0
    # An anonymised case keeps its document rows without their files (privacy/anonymise.py).
    for document in Document.objects.filter(case__anonymised_at__isnull=True).only("pk", "storage_key").iterator():
        if not store.exists(document.storage_key):
            Document.objects.filter(pk=document.pk).delete()
            lost_rows += 1
    known = set(Document.objects.values_list("storage_key", flat=True))
    cutoff = timezone.now() - grace
    removed = 0
    for key in files.stored_keys("cases"):
        if key in known or store.get_modified_time(key) > cutoff:
            continue
        store.delete(key)
        removed += 1
    return lost_rows, removed


def documents_sweep_staging(*, older_than: timedelta = timedelta(seconds=intake.STAGING_MAX_AGE)) -> int:
    """Remove files an intake form parked (under `staging/`) longer ago than `older_than`: by then
    the token that could adopt them has expired, so no form will ever use them. Returns how many."""
    store = files.storage()
    cutoff = timezone.now() - older_than
    removed = 0
    for key in files.stored_keys("staging"):
        if store.get_modified_time(key) <= cutoff:
            store.delete(key)
            removed += 1
    return removed


@dataclass
class _Ready:
    name: str
    kind: str
    checked: files.CheckedFile
    key: str


@dataclass
class IntakeDocuments:
    """Files parked by an intake form, already read, checked and stored under their case keys:
    `attach` only writes rows, so the case and its documents are saved in one short transaction
    with no call to the file store inside it."""

    uploader: User
    ready: list[_Ready] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def attach(self, case: Case) -> list[str]:
        """The documents' rows on the new case, in the case's transaction. Returns a message
        for each file that could not be attached (the case stands regardless)."""
        problems = list(self.problems)
        for item in self.ready:
            try:
                _check_case_room(case, item.checked.size)
            except UploadRefused as error:
                problems.append(_("%(name)s: %(reason)s") % {"name": item.name, "reason": " ".join(error.messages)})
                self.unused.append(item.key)
                continue
            _document_row(case, self.uploader, item.checked, item.kind, item.key)
        return problems


@contextmanager
def documents_for_intake(*, uploader: User, staged: list[intake.Staged]) -> Iterator[IntakeDocuments]:
    """Get an intake's parked files ready before its case exists; open the case (and `attach`)
    inside the `with`, in a transaction of its own.

    Raises StorageUnavailable when the file store fails (before the body runs: nothing is
    created, and the parked files stay for a retry). When the body raises, the copies made for
    the case are removed; when it succeeds, the parked files are.
    """
    documents = IntakeDocuments(uploader=uploader)
    seen: set[str] = set()
    try:
        for item in staged:
            try:
                checked = files.check_upload(intake.read_staged(item), item.name)
            except FileNotFoundError:
                documents.problems.append(_("%(name)s: the file was lost; please add it again.") % {"name": item.name})
                continue
            except UploadRefused as error:
                documents.problems.append(
                    _("%(name)s: %(reason)s") % {"name": item.name, "reason": " ".join(error.messages)}
                )
                continue
            if checked.sha256 in seen:  # the same file given twice: kept once, as on a case
                continue
            seen.add(checked.sha256)
            key = f"cases/intake/{uuid.uuid4().hex}"
            files.store(key, checked.data)
            documents.ready.append(_Ready(name=item.name, kind=item.kind, checked=checked, key=key))
        yield documents
    except BaseException:
        _forget([item.key for item in documents.ready])
        raise
    _forget(documents.unused + [item.key for item in staged])


# --- summaries -----------------------------------------------------------------------------


def summary_generate(*, case: Case, actor: User | None) -> Document:
    """Render the case's summary PDF in the resident's language and keep it as a document,
    through the same checks as any upload. Its QR code opens the public verification page."""
    from consult.pdf import qr_svg, render_pdf  # WeasyPrint loads Pango: only where PDFs are made

    domain = domain_of(case)
    if domain is None:
        raise CaseError(_("This kind of case has no summary."))
    if case.anonymised_at is not None:
        raise CaseError(_("The personal details of this case were removed: there is nothing left to summarise."))
    code = secrets.token_urlsafe(16)
    verify_url = settings.SITE_URL + reverse("verify_document", kwargs={"code": code})
    with translation.override(case.resident.language):
        template, context = domain.summary(case)
        context.update(
            case=case,
            verify_url=verify_url,
            qr=qr_svg(verify_url),
            generated_at=timezone.now(),
            documents=case.documents.exclude(kind__in=[DocumentKind.SUMMARY, DocumentKind.VOICE]).order_by(
                "created_at"
            ),
        )
        data = render_pdf(template, context)
        name = f"{domain.summary_title} {case.reference}.pdf"
    checked = files.check_upload(io.BytesIO(data), name)
    document, _created = _keep(case, actor, checked, DocumentKind.SUMMARY, verification_code=code)
    return document


def document_verify(*, code: str, data: bytes | None = None) -> tuple[Document, bool | None]:
    """The generated document behind `code`, and whether `data` (if given) is exactly it."""
    document = Document.objects.select_related("case").get(verification_code=code, kind=DocumentKind.SUMMARY)
    if data is None:
        return document, None
    return document, hashlib.sha256(data).hexdigest() == document.sha256

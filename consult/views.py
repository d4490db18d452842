from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.http import content_disposition_header
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.forms import SignupForm
from consult import files, limits, selectors, services
from consult.domains import domain_of
from consult.errors import CaseError
from consult.files import SCANNER_DOWN, ScannerUnavailable, StorageUnavailable, UploadRefused
from consult.forms import (
    CaseDetailsForm,
    CaseSubmitForm,
    CatalogueSearchForm,
    ChatHistoryForm,
    DocumentKindForm,
    OnDutyForm,
    RatingForm,
    ReasonForm,
    ReassignForm,
)
from consult.intake import SENT_TAG, poster_place
from consult.models import Case, Document, DocumentKind, Professional, Role, Skill, Status, User, Verb
from consult.net import client_address
from consult.once import submit_once
from consult.services.reads import case_read_record
from consult.services.voice import voice_message_post
from jobs.selectors import job_failures_open

View = Callable[..., HttpResponseBase]


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _professional(request: HttpRequest) -> Professional:
    """The signed-in doctor's or lawyer's profile; everyone else gets 404."""
    try:
        return Professional.objects.select_related("user").get(user=_user(request))
    except Professional.DoesNotExist:
        raise Http404 from None


def coordinator_required(view: View) -> View:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not _user(request).is_coordinator:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def refused(request: HttpRequest, error: CaseError) -> None:
    for message in error.messages:
        messages.error(request, message)


def home(request: HttpRequest) -> HttpResponse:
    form = CatalogueSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    catalogue = selectors.catalogue(query=query)
    return render(
        request,
        "consult/home.html",
        {"catalogue": catalogue, "search": form, "query": query, "found": sum(map(len, catalogue.values()))},
    )


@submit_once
def case_new(request: HttpRequest, skill_code: str) -> HttpResponse:
    """The intake of a service: the stable address its QR posters point at. Someone not logged
    in gets the service's landing instead: what it is, who answers and how soon, and the phone
    code that signs them up (or in) and brings them back here."""
    skill = get_object_or_404(Skill, code=skill_code, is_active=True)
    if not request.user.is_authenticated:
        if request.method != "GET":
            return redirect_to_login(request.get_full_path())
        return render(
            request,
            "consult/start.html",
            {"skill": skill, "form": SignupForm(), "next": request.get_full_path(), "place": poster_place(request)},
        )
    user = _user(request)
    if not user.is_resident:
        messages.error(request, _("Only residents open cases. Please log in with a resident account."))
        return redirect("home")
    domain = domain_of(skill.kind)
    if domain is not None:
        return domain.intake_view(request, skill)
    form = CaseSubmitForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case = services.case_submit(
                resident=user,
                skill=skill,
                description=form.cleaned_data["description"],
                priority=form.priority(),
            )
        except CaseError as error:
            refused(request, error)
        else:
            messages.success(
                request,
                _("Your case has been received. Its reference is %(ref)s.") % {"ref": case.reference},
                extra_tags=SENT_TAG,
            )
            kind_form = DocumentKindForm(request.POST, kind=skill.kind)
            results, _status = _add_files(request, case, kind_form)
            for result in results:
                (messages.success if result["ok"] else messages.error)(request, result["message"])
            url = reverse("case_detail", kwargs={"reference": case.reference})
            if wants_json(request):
                return JsonResponse({"redirect": url})
            return HttpResponseRedirect(url)
    return render(
        request,
        "consult/case_new.html",
        {"form": form, "skill": skill, "kind_form": DocumentKindForm(kind=skill.kind)},
    )


@login_required
def my_cases(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/my_cases.html", {"cases": selectors.cases_of_resident(_user(request))})


@login_required
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    actions = selectors.case_actions(case=case, user=user)
    place = selectors.queue_place(case)
    domain = domain_of(case)
    events = list(selectors.case_timeline(case))
    read = case_read_record(case=case, user=user, timeline=events)
    promised = selectors.promised_by(case)
    reopen_until = services.reopen_deadline(case) if case.resident_id == user.pk else None
    if read is not None:
        events.append(read)
    return render(
        request,
        "consult/case_detail.html",
        {
            "case": case,
            "actions": actions,
            "timeline": [event for event in events if event.verb != Verb.VIEWED],
            # Who looked at the case (staff reads), newest first, with their role then.
            "readers": [
                (event, Role(event.detail["role"]).label if event.detail.get("role") in Role.values else "")
                for event in reversed(events)
                if event.verb == Verb.VIEWED
            ],
            "place_in_line": place,
            "estimated_wait": selectors.estimated_wait(case) if place else None,
            "reason_form": ReasonForm(),
            # Voice messages are played in the chat, not listed among the papers.
            "documents": case.documents.exclude(kind=DocumentKind.VOICE).select_related("uploader"),
            "can_upload": services.can_upload(case, user),
            "kind_form": DocumentKindForm(kind=case.kind),
            "domain_template": domain.case_template if domain else None,
            "chat": selectors.chat_page(case=case),
            "read_seq": selectors.chat_read_seq(case=case, user=user),
            "promised_by": promised,
            "reopen_minutes": settings.CASE_REOPEN_MINUTES,
            "promise_late": promised is not None and promised < timezone.now(),
            "reopen_until": reopen_until if reopen_until and reopen_until > timezone.now() else None,
            "can_chat": case.status not in (Status.CLOSED, Status.WITHDRAWN),
            "voice_max_seconds": settings.VOICE_MAX_SECONDS,
            "rating_form": RatingForm() if selectors.wants_rating(case, user) else None,
            "can_request_summary": domain is not None and "summary" in actions,
            **(domain.case_context(case, user) if domain else {}),
            "reassign_form": ReassignForm(case=case) if "reassign" in actions else None,
            "details_form": CaseDetailsForm(initial={"description": case.description})
            if case.resident_id == user.pk and case.is_open and not case.anonymised_at
            else None,
        },
    )


@require_GET
@login_required
def chat_history(request: HttpRequest, reference: str) -> JsonResponse:
    """Earlier messages of the case page's chat, a page at a time, rendered as the page renders
    them: {"html": the <li> items oldest first, "before": the number to ask below next, "more"}."""
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    form = ChatHistoryForm(request.GET)
    if not form.is_valid():
        message = _("Could not load earlier messages: the request was not understood.")
        return JsonResponse({"error": message}, status=400)
    page = selectors.chat_page(case=case, before=form.cleaned_data["before"])
    # No read marks here (no query): the page's chat marks these as it marks the rest (room.js).
    html = render_to_string("consult/_chat_messages.html", {"case": case, "chat": page, "user": user}, request)
    return JsonResponse({"html": html, "before": page.first_seq, "more": page.has_earlier})


def _run_action(request: HttpRequest, case: Case, action: str) -> Case:
    user = _user(request)
    reason = ReasonForm(request.POST)
    reason_text = reason.cleaned_data["reason"] if reason.is_valid() else ""
    if action == "withdraw":
        return services.case_withdraw(case=case, resident=user, reason=reason_text)
    if action == "reopen":
        return services.case_reopen(case=case, resident=user)
    if action == "close":
        return services.case_close(case=case, user=user)
    if action == "reassign":
        form = ReassignForm(request.POST, case=case)
        if not form.is_valid():
            raise CaseError(_("Choose a professional to give the case to."))
        return services.case_reassign(case=case, coordinator=user, professional=form.cleaned_data["professional"])
    professional = _professional(request)
    if action == "accept":
        return services.case_accept(case=case, professional=professional)
    if action == "decline":
        return services.case_decline(case=case, professional=professional, reason=reason_text)
    if action == "resolve":
        return services.case_resolve(case=case, professional=professional)
    raise Http404


# Lazy: translated per request, in the language of whoever acted, not once at import.
ACTION_DONE = {
    "accept": gettext_lazy("You accepted the case."),
    "decline": gettext_lazy("You declined the case. It goes to another professional."),
    "resolve": gettext_lazy("The case is marked resolved."),
    "close": gettext_lazy("The case is closed."),
    "withdraw": gettext_lazy("Your case has been withdrawn."),
    "reopen": gettext_lazy("Your case is open again. Nothing in it was lost."),
    "reassign": gettext_lazy("The case has been reassigned."),
}


@require_POST
@login_required
@submit_once
def case_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    case = selectors.case_get_for_user(user=_user(request), reference=reference)
    try:
        case = _run_action(request, case, action)
    except CaseError as error:
        refused(request, error)
    else:
        done = str(ACTION_DONE[action])
        until = services.reopen_deadline(case) if action == "withdraw" else None
        if until is not None:
            done += " " + _("You can undo this until %(time)s.") % {"time": date_format(localtime(until), "H:i")}
        messages.success(request, done)
    if action == "decline":
        return redirect("work_queue")
    return redirect("case_detail", reference=case.reference)


@require_POST
@login_required
@submit_once
def case_details_edit(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    form = CaseDetailsForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("description", []):
            messages.error(request, str(error))
        return redirect("case_detail", reference=case.reference)
    try:
        services.case_details_edit(case=case, resident=user, description=form.cleaned_data["description"])
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("The details of your case are updated."))
    return redirect("case_detail", reference=case.reference)


@login_required
def work_queue(request: HttpRequest) -> HttpResponse:
    professional = _professional(request)
    return render(
        request,
        "consult/work_queue.html",
        {
            "professional": professional,
            "open_cases": selectors.open_cases_of_professional(professional),
            "queue": selectors.queue_for_professional(professional),
            "load": selectors.professional_load(professional),
        },
    )


@require_POST
@login_required
@submit_once
def take_next(request: HttpRequest) -> HttpResponse:
    professional = _professional(request)
    try:
        case = services.case_claim_next(professional=professional)
    except CaseError as error:
        refused(request, error)
        return redirect("work_queue")
    if case is None:
        messages.info(request, _("No case is waiting in your services right now."))
        return redirect("work_queue")
    return redirect("case_detail", reference=case.reference)


@require_POST
@login_required
def set_on_duty(request: HttpRequest) -> HttpResponse:
    professional = _professional(request)
    form = OnDutyForm(request.POST)
    form.is_valid()
    on_duty = bool(form.cleaned_data.get("on_duty"))
    given = services.professional_set_on_duty(professional=professional, on_duty=on_duty)
    if given:
        messages.success(
            request,
            ngettext(
                "You are on duty. A waiting case was given to you: accept it to start.",
                "You are on duty. %(n)d waiting cases were given to you: accept them to start.",
                len(given),
            )
            % {"n": len(given)},
        )
        # The first in line, where the Accept button is; the others are in "My open cases".
        return redirect("case_detail", reference=given[0].reference)
    messages.success(request, _("You are on duty.") if on_duty else _("You are off duty."))
    return redirect("work_queue")


@coordinator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "consult/dashboard.html",
        {
            "rows": selectors.coordinator_dashboard(_user(request)),
            "open_cases": selectors.open_cases_for_coordinator(_user(request)),
            "job_failures": job_failures_open(user=_user(request)),
        },
    )


# --- documents -----------------------------------------------------------------------------


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


STORAGE_DOWN = gettext_lazy(
    "The file store cannot be reached right now. Nothing was saved. Please try again in a few minutes."
)


def _add_files(request: HttpRequest, case: Case, kind_form: DocumentKindForm) -> tuple[list[dict[str, Any]], int]:
    """Keep each uploaded file or say why not; one bad file never stops the others."""
    uploads = request.FILES.getlist("files")
    if not uploads:
        return [], 200
    kind = kind_form.cleaned_data["kind"] if kind_form.is_valid() else "other"
    results: list[dict[str, Any]] = []
    status = 200
    for upload in uploads:
        result: dict[str, Any] = {"name": upload.name, "ok": False}
        try:
            # One per file, per user: the count the API's uploads share (consult/api/throttles.py).
            limits.take("uploads", f"user:{_user(request).pk}")
            document, created = services.document_add(
                case=case, uploader=_user(request), upload=upload, name=upload.name or "", kind=kind
            )
        except limits.RateLimited as limited:
            result["message"] = _("%(name)s: %(reason)s") % {"name": upload.name, "reason": limited.message}
            status = max(status, 429)
        except (UploadRefused, CaseError) as error:
            result["message"] = _("%(name)s: %(reason)s") % {"name": upload.name, "reason": " ".join(error.messages)}
            status = max(status, 400)
        except StorageUnavailable as error:
            reason = SCANNER_DOWN if isinstance(error, ScannerUnavailable) else STORAGE_DOWN
            result["message"] = _("%(name)s: %(reason)s") % {"name": upload.name, "reason": reason}
            status = 503
        else:
            result.update(
                ok=True,
                name=document.original_name,
                duplicate=not created,
                message=(_("%(name)s: saved.") if created else _("%(name)s: this file was already on the case."))
                % {"name": document.original_name},
                id=document.pk,
                html=render_to_string("consult/_document.html", {"document": document, "case": case}, request)
                if created
                else "",
            )
        results.append(result)
    return results, status


@require_POST
@login_required
@submit_once
def document_upload(request: HttpRequest, reference: str) -> HttpResponse:
    case = selectors.case_get_for_user(user=_user(request), reference=reference)
    results, status = _add_files(request, case, DocumentKindForm(request.POST, kind=case.kind))
    if not results:
        message = _("Choose at least one file.")
        if wants_json(request):
            return JsonResponse({"results": [], "error": message}, status=400)
        messages.error(request, message)
    if wants_json(request):
        return JsonResponse({"results": results}, status=status)
    for result in results:
        (messages.success if result["ok"] else messages.error)(request, result["message"])
    return redirect("case_detail", reference=case.reference)


@require_POST
@login_required
def voice_upload(request: HttpRequest, reference: str) -> JsonResponse:
    """A recording from the case page's microphone button (static/js/voice.js), posted in the
    chat; the message reaches the room by its socket like any other. Answers JSON: the page shows
    `message` when `ok` is false."""
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"ok": False, "message": _("Choose a file.")}, status=400)
    try:
        limits.take("uploads", f"user:{user.pk}")
        message, _created = voice_message_post(
            case=case, sender=user, upload=upload, name=upload.name or "voice",
            client_id=str(request.POST.get("client_id") or ""),
        )  # fmt: skip
    except limits.RateLimited as limited:
        return JsonResponse({"ok": False, "message": str(limited.message)}, status=429)
    except (UploadRefused, CaseError) as error:
        return JsonResponse({"ok": False, "message": " ".join(error.messages)}, status=400)
    except StorageUnavailable as error:
        reason = SCANNER_DOWN if isinstance(error, ScannerUnavailable) else STORAGE_DOWN
        return JsonResponse({"ok": False, "message": str(reason)}, status=503)
    return JsonResponse({"ok": True, "seq": message.seq})


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(request: HttpRequest, document: Document) -> tuple[int, int] | None:
    """The one byte range asked for (first, last), clipped to the file; (-1, -1) when it cannot be
    served; None when the whole file is asked for. Safari plays audio only from a server that
    answers ranges (object storage does; this is for the local disk)."""
    asked = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if asked is None or not (asked[1] or asked[2]):
        return None
    size = document.size
    if asked[1]:
        first, last = int(asked[1]), min(int(asked[2]) if asked[2] else size - 1, size - 1)
    else:
        first, last = max(size - int(asked[2]), 0), size - 1
    return (first, last) if first <= last and first < size else (-1, -1)


def _partial(handle: Any, document: Document, ranged: tuple[int, int]) -> HttpResponse:
    first, last = ranged
    with handle:
        if first < 0:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{document.size}"
            return response
        handle.seek(first)
        data = handle.read(last - first + 1)
    response = HttpResponse(data, status=206, content_type=document.content_type)
    response["Content-Range"] = f"bytes {first}-{first + len(data) - 1}/{document.size}"
    return response


@require_GET
@login_required
def document_download(request: HttpRequest, reference: str, document_id: int) -> HttpResponse | FileResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    document: Document = get_object_or_404(case.documents, pk=document_id)
    as_attachment = request.GET.get("download") == "1"
    disposition = content_disposition_header(as_attachment, document.original_name) or "inline"
    response: HttpResponse | FileResponse
    ranged: tuple[int, int] | None = None
    try:
        if files.storage_is_remote():
            url = files.presigned_url(
                document.storage_key, filename_header=disposition, content_type=document.content_type
            )
            response = HttpResponseRedirect(url)
        else:
            try:
                handle = files.open_stored(document.storage_key)
            except FileNotFoundError:
                raise Http404("file missing") from None
            ranged = _byte_range(request, document) if document.is_audio else None
            if ranged is not None:
                response = _partial(handle, document, ranged)
            else:
                response = FileResponse(handle, content_type=document.content_type)
            if document.is_audio:
                response["Accept-Ranges"] = "bytes"
            response["Content-Disposition"] = disposition
    except StorageUnavailable:
        return render(request, "consult/storage_down.html", {"case": case}, status=503)
    # A player asks for a recording in several pieces: one view, the one from its start.
    if ranged is None or ranged[0] == 0:
        services.document_record_view(document=document, user=user)
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


# --- summaries and their verification -------------------------------------------------------


@require_POST
@login_required
@submit_once
def summary_request(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    if "summary" not in selectors.case_actions(case=case, user=user):
        messages.error(request, _("The summary can be made once the outcome is written."))
        return redirect("case_detail", reference=case.reference)
    try:
        document = services.summary_generate(case=case, actor=user)
    except CaseError as error:
        refused(request, error)
        return redirect("case_detail", reference=case.reference)
    except StorageUnavailable:
        return render(request, "consult/storage_down.html", {"case": case}, status=503)
    messages.success(request, _("The summary is ready: %(name)s") % {"name": document.original_name})
    return redirect("case_detail", reference=case.reference)


def verify_document(request: HttpRequest, code: str) -> HttpResponse:
    """Public: says whether a printed summary is one we made, and whether a file is unchanged.
    Shows nothing of the case's content."""
    data: bytes | None = None
    status = 200
    if request.method == "POST":
        # Anyone may send a file here: counted per address before its bytes are read (hashing
        # megabytes for whoever asks is work worth bounding).
        try:
            limits.take("verify_uploads", f"address:{client_address(request)}")
        except limits.RateLimited as limited:
            messages.error(request, limited.message)
            status = 429
        else:
            upload = request.FILES.get("file")
            if upload is not None:
                data = upload.read(settings.UPLOAD_MAX_FILE_BYTES + 1)
    try:
        document, matches = services.document_verify(code=code, data=data)
    except Document.DoesNotExist:
        return render(request, "consult/verify.html", {"document": None, "code": code}, status=404)
    context = {"document": document, "matches": matches, "code": code}
    return render(request, "consult/verify.html", context, status=status)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, remembered on the account for notices and summaries."""
    from django.views.i18n import set_language as django_set_language

    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        User.objects.filter(pk=request.user.pk).update(language=language)
    return response

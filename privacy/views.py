from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from consult import files, selectors
from consult.errors import CaseError
from consult.models import User
from consult.views import coordinator_required, refused
from privacy import services
from privacy.export import export_build, export_filename
from privacy.forms import ErasureDecisionForm, ErasureRequestForm
from privacy.models import ErasureRequest, ErasureStatus
from privacy.selectors import erasure_requests_pending


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
@require_GET
def export(request: HttpRequest) -> HttpResponse | FileResponse:
    """The signed-in person's own data as one zip (only the cases they opened)."""
    user = _user(request)
    try:
        archive = export_build(user=user)
    except files.StorageUnavailable:
        return render(request, "consult/storage_down.html", status=503)
    return FileResponse(archive, as_attachment=True, filename=export_filename(user), content_type="application/zip")


def _case_page(reference: str) -> str:
    return reverse("case_detail", kwargs={"reference": reference}) + "#erasure"


@login_required
@require_POST
def erasure_ask(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    form = ErasureRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_case_page(case.reference))
    try:
        services.erasure_request(case=case, resident=user, reason=form.cleaned_data["reason"])
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("Your request was sent. A coordinator will answer it; you will be told."))
    return redirect(_case_page(case.reference))


@coordinator_required
@require_GET
def erasure_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "privacy/erasure_requests.html",
        {
            # One form per request, each with its own ids (several on one page).
            "pending": [
                (r, ErasureDecisionForm(auto_id=f"erasure_{r.pk}_%s"))
                for r in erasure_requests_pending(user=_user(request))
            ],
        },
    )


@coordinator_required
@require_POST
def erasure_decide(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    # A case of another domain answers as a missing one (the coordinators' scope).
    case = selectors.case_get_for_user(user=user, reference=reference)
    pending = ErasureRequest.objects.filter(case=case, status=ErasureStatus.PENDING).first()
    if pending is None:
        raise Http404
    form = ErasureDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"{case.reference}: {error}")
        return redirect("privacy:erasure_list")
    try:
        services.erasure_decide(
            request=pending, coordinator=user, approve=form.cleaned_data["decision"] == "approve",
            answer=form.cleaned_data["answer"],
        )
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("Answered. The resident is told."))
    return redirect("privacy:erasure_list")

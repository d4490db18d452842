"""Pages for the public and for coordinators' reporting: tracking by reference, the receipt,
the rating, QR posters, public figures, the coordinator report and its CSV export."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consult import figures as figures_module
from consult import limits, selectors, services
from consult.errors import CaseError
from consult.forms import PosterForm, RatingForm, ReportFilterForm, TrackForm
from consult.models import Poster, User
from consult.net import client_address
from consult.once import submit_once
from consult.views import coordinator_required, refused


def track(request: HttpRequest) -> HttpResponse:
    """Status of a case by its reference and the last 4 digits of the phone: no account needed,
    nothing personal shown. A wrong pair and a missing case get the very same answer."""
    form = TrackForm(request.POST or None, initial={"reference": request.GET.get("ref", "")})
    result: selectors.Tracked | None = None
    not_found = False
    status = 200
    if request.method == "POST":
        try:
            limits.take("tracking_page", f"address:{client_address(request)}")
            if form.is_valid():
                result = services.case_track_counted(
                    reference=form.cleaned_data["reference"], phone_last4=form.cleaned_data["phone_last4"]
                )
                not_found = result is None
        except limits.RateLimited as limited:
            messages.error(request, limited.message)
            status = 429
    return render(
        request, "consult/track.html", {"form": form, "result": result, "not_found": not_found}, status=status
    )


@login_required
def receipt(request: HttpRequest, reference: str) -> HttpResponse:
    case = selectors.case_get_for_user(user=request.user, reference=reference)
    from consult.pdf import qr_svg

    url = request.build_absolute_uri(f"/track/?ref={case.reference}")
    return render(request, "consult/receipt.html", {"case": case, "track_url": url, "qr": qr_svg(url, scale=5)})


@require_POST
@login_required
@submit_once
def rate(request: HttpRequest, reference: str) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    case = selectors.case_get_for_user(user=user, reference=reference)
    try:
        if "skip" in request.POST:
            services.rating_skip(case=case, resident=user)
            messages.info(request, _("All right. We will not ask again."))
        else:
            form = RatingForm(request.POST)
            if not form.is_valid():
                messages.error(request, _("Choose from 1 to 5 stars, or skip."))
                return redirect("case_detail", reference=case.reference)
            services.rating_submit(case=case, resident=user, **form.cleaned_data)
            messages.success(request, _("Thank you for your rating!"))
    except CaseError as error:
        refused(request, error)
    return redirect("case_detail", reference=case.reference)


def public_figures(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/figures.html", {"figures": figures_module.public_figures()})


def _report_filters(request: HttpRequest) -> tuple[ReportFilterForm, figures_module.Filters]:
    # A coordinator's report counts the cases of their domains only, as their pages show them.
    user = request.user
    kinds = user.coordinated_kinds if isinstance(user, User) else frozenset()
    form = ReportFilterForm(request.GET or None, kinds=kinds)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        professional = data.get("professional")
        return form, figures_module.Filters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            skill=data.get("skill"),
            organisation=data.get("organisation") or "",
            professional_id=professional.pk if professional else None,
            kinds=kinds,
        )
    return form, figures_module.Filters(kinds=kinds)


@coordinator_required
def report(request: HttpRequest) -> HttpResponse:
    form, filters = _report_filters(request)
    return render(
        request,
        "consult/report.html",
        {"form": form, "figures": figures_module.compute(filters), "query": request.GET.urlencode()},
    )


@coordinator_required
def report_csv(request: HttpRequest) -> HttpResponse:
    """The same figures as the report (same filters), for a spreadsheet."""
    _form, filters = _report_filters(request)
    data = figures_module.compute(filters)
    # A byte-order mark, so spreadsheet programs read the Chinese as UTF-8.
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="figures.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    for label, value in figures_module.rows(data):
        writer.writerow([label, value])
    return response


@coordinator_required
@submit_once
def posters(request: HttpRequest) -> HttpResponse:
    form = PosterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = request.user
        assert isinstance(user, User)
        poster = services.poster_create(user=user, **form.cleaned_data)
        messages.success(request, _("The poster is ready to print."))
        return redirect("poster_pdf", poster_id=poster.pk)
    return render(
        request,
        "consult/posters.html",
        {"form": form, "posters": Poster.objects.select_related("skill")[:100], "places": selectors.cases_by_place()},
    )


@coordinator_required
def poster_pdf(request: HttpRequest, poster_id: int) -> HttpResponse:
    poster = get_object_or_404(Poster.objects.select_related("skill"), pk=poster_id)
    response = HttpResponse(services.poster_pdf(poster), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="poster-{poster.skill.code}-{poster.pk}.pdf"'
    return response

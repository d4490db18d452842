from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consult import selectors, services
from consult.errors import CaseError
from consult.forms import (
    CaseSubmitForm,
    OnDutyForm,
    PhoneLoginForm,
    ReasonForm,
    ReassignForm,
    SignupForm,
)
from consult.models import Case, Professional, Skill, User

View = Callable[..., HttpResponse]


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
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _user(request).is_coordinator:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _refused(request: HttpRequest, error: CaseError) -> None:
    for message in error.messages:
        messages.error(request, message)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/home.html", {"catalogue": selectors.catalogue()})


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.resident_signup(
            phone=form.cleaned_data["phone"],
            name=form.cleaned_data["name"],
            password=form.cleaned_data["password"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Your account is ready."))
        next_url = request.POST.get("next") or request.GET.get("next")
        from django.utils.http import url_has_allowed_host_and_scheme

        if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
            return redirect(next_url)
        return redirect("home")
    return render(request, "consult/signup.html", {"form": form, "next": request.GET.get("next", "")})


class PhoneLoginView(LoginView):
    form_class = PhoneLoginForm
    template_name = "consult/login.html"
    redirect_authenticated_user = True


@login_required
def case_new(request: HttpRequest, skill_code: str) -> HttpResponse:
    skill = get_object_or_404(Skill, code=skill_code, is_active=True)
    user = _user(request)
    if not user.is_resident:
        messages.error(request, _("Only residents open cases. Please log in with a resident account."))
        return redirect("home")
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
            _refused(request, error)
        else:
            messages.success(
                request, _("Your case has been received. Its reference is %(ref)s.") % {"ref": case.reference}
            )
            return redirect("case_detail", reference=case.reference)
    return render(request, "consult/case_new.html", {"form": form, "skill": skill})


@login_required
def my_cases(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/my_cases.html", {"cases": selectors.cases_of_resident(_user(request))})


@login_required
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    user = _user(request)
    case = selectors.case_get_for_user(user=user, reference=reference)
    actions = selectors.case_actions(case=case, user=user)
    place = selectors.queue_place(case)
    return render(
        request,
        "consult/case_detail.html",
        {
            "case": case,
            "actions": actions,
            "timeline": selectors.case_timeline(case),
            "place_in_line": place,
            "estimated_wait": selectors.estimated_wait(case) if place else None,
            "reason_form": ReasonForm(),
            "reassign_form": ReassignForm(case=case) if "reassign" in actions else None,
        },
    )


def _run_action(request: HttpRequest, case: Case, action: str) -> Case:
    user = _user(request)
    reason = ReasonForm(request.POST)
    reason_text = reason.cleaned_data["reason"] if reason.is_valid() else ""
    if action == "withdraw":
        return services.case_withdraw(case=case, resident=user, reason=reason_text)
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


ACTION_DONE = {
    "accept": _("You accepted the case."),
    "decline": _("You declined the case. It goes to another professional."),
    "resolve": _("The case is marked resolved."),
    "close": _("The case is closed."),
    "withdraw": _("Your case has been withdrawn."),
    "reassign": _("The case has been reassigned."),
}


@require_POST
@login_required
def case_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    case = selectors.case_get_for_user(user=_user(request), reference=reference)
    try:
        _run_action(request, case, action)
    except CaseError as error:
        _refused(request, error)
    else:
        messages.success(request, str(ACTION_DONE[action]))
    if action == "decline":
        return redirect("work_queue")
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
def take_next(request: HttpRequest) -> HttpResponse:
    professional = _professional(request)
    try:
        case = services.case_claim_next(professional=professional)
    except CaseError as error:
        _refused(request, error)
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
    services.professional_set_on_duty(professional=professional, on_duty=on_duty)
    messages.success(request, _("You are on duty.") if on_duty else _("You are off duty."))
    return redirect("work_queue")


@coordinator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "consult/dashboard.html", {"rows": selectors.coordinator_dashboard()})

"""The phone pages: each flow is two steps, the number (a code is sent) then the code. What the
first step gave (the number, and for sign-up the name and the hashed password) waits in the
session for the second."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import access, lockout, services
from accounts.forms import CodeForm, NewPhoneForm, PhoneForm, ResetForm, SignupForm
from accounts.models import Purpose
from accounts.selectors import landing_url
from accounts.services import CodeLimit, CodeRefused
from consult import limits
from consult.forms import PhoneLoginForm
from consult.models import Skill, User
from consult.net import client_address
from consult.once import submit_once
from consult.views import coordinator_required

BACKEND = "django.contrib.auth.backends.ModelBackend"
PENDING = "accounts.pending."

CODE_PAGES: dict[str, dict[str, Any]] = {
    Purpose.SIGNUP: {
        "title": gettext_lazy("Confirm your phone number"),
        "button": gettext_lazy("Create my account"),
        "start": "signup",
    },
    Purpose.LOGIN: {"title": gettext_lazy("Log in with a code"), "button": gettext_lazy("Log in"), "start": "login"},
    Purpose.RESET: {
        "title": gettext_lazy("Choose a new password"),
        "button": gettext_lazy("Save the new password"),
        "start": "accounts:reset",
    },
    Purpose.CHANGE_PHONE: {
        "title": gettext_lazy("Confirm your new number"),
        "button": gettext_lazy("Change my number"),
        "start": "accounts:phone",
    },
}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


def _service_of(next_url: str) -> Skill | None:
    """The service a sign-up or log-in is on its way to (a poster's or the catalogue's), so its
    pages can say what it is for."""
    try:
        match = resolve(urlsplit(next_url).path) if next_url else None
    except Resolver404:
        return None
    if match is None or match.url_name != "case_new":
        return None
    return Skill.objects.filter(code=match.kwargs.get("skill_code", ""), is_active=True).first()


def _pending(request: HttpRequest, purpose: str) -> dict[str, Any] | None:
    value = request.session.get(PENDING + purpose)
    return value if isinstance(value, dict) else None


def _code_send(request: HttpRequest, phone: str, purpose: str, user: User | None = None) -> CodeRefused | None:
    """Send a code; the refusal, if any."""
    try:
        services.code_send(
            phone=phone,
            purpose=purpose,
            client_address=client_address(request),
            language=get_language() or settings.LANGUAGE_CODE,
            user=user,
        )
    except CodeRefused as error:
        return error
    return None


def _send(
    request: HttpRequest, form: PhoneForm | SignupForm, purpose: str, user: User | None = None
) -> tuple[bool, int]:
    """Send a code to the form's number; a refusal becomes the form's error. Returns whether it
    was sent and the status to render the form with."""
    error = _code_send(request, form.cleaned_data["phone"], purpose, user)
    if error is not None:
        form.add_error(None, error)
        return False, 429 if isinstance(error, CodeLimit) else 200
    return True, 200


def _to_code_page(name: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse(name) + (f"?{urlencode({'next': next_url})}" if next_url else ""))


def _code_page(
    request: HttpRequest, purpose: str, form: CodeForm | ResetForm, pending: dict[str, Any], status: int = 200
) -> HttpResponse:
    page = CODE_PAGES[purpose]
    return render(
        request,
        "accounts/code.html",
        {
            "form": form,
            "purpose": purpose,
            "masked_phone": services.mask(pending["phone"]),
            "title": page["title"],
            "button": page["button"],
            "start_url": reverse(page["start"]),
            "next": _safe_next(request),
            "service": _service_of(_safe_next(request)),
            # Log-in and reset answer the same whether the number has an account or not.
            "maybe_no_account": purpose in (Purpose.LOGIN, Purpose.RESET),
        },
        status=status,
    )


def _resend(request: HttpRequest, purpose: str, pending: dict[str, Any], user: User | None = None) -> HttpResponse:
    error = _code_send(request, pending["phone"], purpose, user)
    if error is None:
        messages.success(request, _("A new code is on its way."))
    else:
        messages.error(request, " ".join(error.messages))
    return redirect(request.get_full_path())


def _code_step(
    request: HttpRequest, purpose: str, form: CodeForm | ResetForm, pending: dict[str, Any], user: User | None = None
) -> HttpResponse | None:
    """The second step's common part: a resend, or the form to check. None when the form is
    valid and the caller should redeem the code."""
    if request.method == "POST" and "resend" in request.POST:
        return _resend(request, purpose, pending, user)
    if request.method != "POST" or not form.is_valid():
        return _code_page(request, purpose, form, pending)
    return None


def _refused(request: HttpRequest, purpose: str, form: CodeForm | ResetForm, pending: dict[str, Any],
             error: CodeRefused) -> HttpResponse:
    form.add_error("code" if error.code in ("wrong_code",) else None, error)
    return _code_page(request, purpose, form, pending)


# --- sign-up --------------------------------------------------------------------------------


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            limits.take("signup", f"address:{client_address(request)}")
        except limits.RateLimited as limited:
            form.add_error(None, limited.message)
            sent, status = False, 429
        else:
            sent, status = _send(request, form, Purpose.SIGNUP)
        if sent:
            password = form.cleaned_data["password"]
            request.session[PENDING + Purpose.SIGNUP] = {
                "phone": form.cleaned_data["phone"],
                "name": form.cleaned_data["name"],
                # Hashed here: the session never holds the password itself.
                "password_hash": make_password(password) if password else "",
            }
            return _to_code_page("accounts:signup_code", _safe_next(request))
    next_url = _safe_next(request)
    context = {"form": form, "next": next_url, "service": _service_of(next_url)}
    return render(request, "accounts/signup.html", context, status=status)


def signup_code(request: HttpRequest) -> HttpResponse:
    pending = _pending(request, Purpose.SIGNUP)
    if pending is None:
        return redirect("signup")
    form = CodeForm(request.POST or None)
    answer = _code_step(request, Purpose.SIGNUP, form, pending)
    if answer is not None:
        return answer
    try:
        user, created = services.signup_with_code(
            phone=pending["phone"],
            code=form.cleaned_data["code"],
            name=pending["name"],
            password_hash=pending["password_hash"],
            language=get_language() or settings.LANGUAGE_CODE,
        )
    except CodeRefused as error:
        return _refused(request, Purpose.SIGNUP, form, pending, error)
    del request.session[PENDING + Purpose.SIGNUP]
    auth_login(request, user, backend=BACKEND)
    if created:
        messages.success(request, _("Welcome! Your account is ready."))
    else:
        messages.info(
            request, _("This number already had an account: you are now logged in to it. Nothing was changed.")
        )
    return redirect(_safe_next(request) or landing_url(user=user))


# --- log-in ---------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """A code first (residents), a password as the other way (everyone; staff only this way)."""

    form_class = PhoneLoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "password" in request.POST:
            try:
                # Per address, the count the API's log-in shares; axes locks the phone and address.
                limits.take("login", f"address:{client_address(request)}")
            except limits.RateLimited as limited:
                messages.error(request, limited.message)
                return self.render_to_response(self.get_context_data(form=self.form_class(request)), status=429)
            return super().post(request, *args, **kwargs)
        code_form = PhoneForm(request.POST)
        status = 200
        if code_form.is_valid():
            sent, status = _send(request, code_form, Purpose.LOGIN)
            if sent:
                request.session[PENDING + Purpose.LOGIN] = {"phone": code_form.cleaned_data["phone"]}
                return _to_code_page("accounts:login_code", self.get_redirect_url())
        context = self.get_context_data(code_form=code_form, form=self.form_class(request))
        return self.render_to_response(context, status=status)

    def get_default_redirect_url(self) -> str:
        return landing_url(user=_user(self.request))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("code_form", PhoneForm())
        return super().get_context_data(**kwargs)


def login_code(request: HttpRequest) -> HttpResponse:
    pending = _pending(request, Purpose.LOGIN)
    if pending is None:
        return redirect("login")
    form = CodeForm(request.POST or None)
    answer = _code_step(request, Purpose.LOGIN, form, pending)
    if answer is not None:
        return answer
    try:
        user = services.login_with_code(phone=pending["phone"], code=form.cleaned_data["code"])
    except CodeRefused as error:
        return _refused(request, Purpose.LOGIN, form, pending, error)
    del request.session[PENDING + Purpose.LOGIN]
    auth_login(request, user, backend=BACKEND)
    return redirect(_safe_next(request) or landing_url(user=user))


# --- a forgotten password -------------------------------------------------------------------


def reset(request: HttpRequest) -> HttpResponse:
    form = PhoneForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        sent, status = _send(request, form, Purpose.RESET)
        if sent:
            request.session[PENDING + Purpose.RESET] = {"phone": form.cleaned_data["phone"]}
            return redirect("accounts:reset_code")
    return render(request, "accounts/reset.html", {"form": form}, status=status)


def reset_code(request: HttpRequest) -> HttpResponse:
    pending = _pending(request, Purpose.RESET)
    if pending is None:
        return redirect("accounts:reset")
    form = ResetForm(request.POST or None, phone=pending["phone"])
    answer = _code_step(request, Purpose.RESET, form, pending)
    if answer is not None:
        return answer
    try:
        user = services.password_reset_with_code(
            phone=pending["phone"], code=form.cleaned_data["code"], password=form.cleaned_data["password"]
        )
    except CodeRefused as error:
        return _refused(request, Purpose.RESET, form, pending, error)
    del request.session[PENDING + Purpose.RESET]
    auth_login(request, user, backend=BACKEND)
    messages.success(request, _("Your new password is saved and you are logged in."))
    return redirect(landing_url(user=user))


# --- the account's settings: a new number, a password ---------------------------------------


@login_required
def phone(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = NewPhoneForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        sent, status = _send(request, form, Purpose.CHANGE_PHONE, user)
        if sent:
            request.session[PENDING + Purpose.CHANGE_PHONE] = {"phone": form.cleaned_data["phone"]}
            return redirect("accounts:phone_code")
    return render(
        request, "accounts/phone.html", {"form": form, "masked_phone": services.mask(user.phone)}, status=status
    )


@login_required
@submit_once
def phone_code(request: HttpRequest) -> HttpResponse:
    pending = _pending(request, Purpose.CHANGE_PHONE)
    if pending is None:
        return redirect("accounts:phone")
    user = _user(request)
    form = CodeForm(request.POST or None)
    answer = _code_step(request, Purpose.CHANGE_PHONE, form, pending, user)
    if answer is not None:
        return answer
    try:
        with access.keeping(request):  # the other devices are logged out, this one stays
            services.phone_change_with_code(user=user, phone=pending["phone"], code=form.cleaned_data["code"])
    except CodeRefused as error:
        return _refused(request, Purpose.CHANGE_PHONE, form, pending, error)
    update_session_auth_hash(request, user)
    del request.session[PENDING + Purpose.CHANGE_PHONE]
    messages.success(
        request, _("Your phone number is now %(phone)s. Log in with it from now on.") % {"phone": user.phone}
    )
    return redirect("accounts:phone")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's, except that an account made without a password sets one without an old one."""

    template_name = "consult/password_change.html"

    def get_form_class(self) -> type[PasswordChangeForm] | type[SetPasswordForm]:
        return PasswordChangeForm if _user(self.request).has_usable_password() else SetPasswordForm

    def form_valid(self, form: PasswordChangeForm | SetPasswordForm) -> HttpResponse:
        # The other devices are logged out (their sessions, API tokens and sockets); this browser
        # stays, its session given the new hash by Django's view.
        with access.keeping(self.request):
            return super().form_valid(form)


@require_POST
@login_required
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session, API token and socket of the account, this browser's too."""
    access.access_end(user=_user(request))
    logout(request)
    messages.success(request, _("You are logged out on every device."))
    return redirect(settings.LOGOUT_REDIRECT_URL)


# --- coordinators: numbers locked out of password log-in -------------------------------------


@coordinator_required
def lockouts(request: HttpRequest) -> HttpResponse:
    """The numbers axes has locked now (accounts/lockout.py), each with an unlock button: a
    resident or a colleague who phoned the coordinator can log in again at once."""
    if request.method == "POST":
        form = PhoneForm(request.POST)
        if form.is_valid():
            lockout.unlock(phone=form.cleaned_data["phone"])
            messages.success(
                request,
                _("%(phone)s can log in with a password again.") % {"phone": services.mask(form.cleaned_data["phone"])},
            )
        return redirect("accounts:lockouts")
    context = {"locked": lockout.locked_numbers(), "lockout_minutes": settings.LOGIN_LOCKOUT_MINUTES}
    return render(request, "accounts/lockouts.html", context)

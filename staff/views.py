"""The second-factor pages: enrol an authenticator app, verify after the password, recovery codes."""

from __future__ import annotations

import segno
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login

from accounts import access
from consult.models import User
from staff import services
from staff.forms import CodeForm, EnrolForm

# The recovery codes just made, shown on the next page once and then dropped from the session.
FRESH_CODES = "staff.fresh_recovery_codes"


def _user(request: HttpRequest) -> User:
    user = request.user
    if not services.needs_second_factor(user):
        raise Http404
    assert isinstance(user, User)
    return user


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("home")


def _verified(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_verified", lambda: False)())


@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """After the password: the code from the app, or a recovery code."""
    user = _user(request)
    if not services.has_second_factor(user):
        return redirect(f"{reverse('staff:enrol')}?next={_next(request)}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.second_factor_check(user=user, code=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            # A new session key once the second factor is proved, as Django does at login.
            request.session.cycle_key()
            return HttpResponseRedirect(_next(request))
        form.add_error("code", _("That code is not right, or it was already used. Please try again."))
    return render(request, "staff/verify.html", {"form": form, "next": _next(request)}, status=200)


def _keep_this_session(request: HttpRequest, user: User) -> None:
    # A new second factor ended the account's other sessions by a new auth hash (accounts/access.py):
    # this one is given it, and a new key, as Django does after a new password.
    user.refresh_from_db(fields=["session_epoch"])
    update_session_auth_hash(request, user)


def _qr_svg(uri: str) -> str:
    # segno writes the SVG itself: no script, no external image, and it scales with the page.
    return segno.make(uri, error="m").svg_inline(scale=6, dark="#000", light="#fff", omitsize=True)


@never_cache
@login_required
def enrol(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: scan the QR code (or type the key), confirm with a code. A user
    who already has one must have proved it in this session to replace it."""
    user = _user(request)
    if services.has_second_factor(user) and not _verified(request):
        return redirect(f"{reverse('staff:verify')}?next={reverse('staff:enrol')}")
    device = services.totp_start(user=user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with access.keeping(request):
            codes = services.totp_confirm(user=user, device=device, code=form.cleaned_data["code"])
        if codes is not None:
            device.refresh_from_db()
            otp_login(request, device)
            _keep_this_session(request, user)
            request.session[FRESH_CODES] = codes
            return redirect(f"{reverse('staff:recovery')}?next={_next(request)}")
        form.add_error("code", _("That code does not match. Check the time on your phone and try again."))
    return render(
        request,
        "staff/enrol.html",
        {
            "form": form,
            "qr": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - segno's own SVG, no user text
            "secret": services.totp_secret(device),
            "next": _next(request),
        },
    )


@never_cache
@login_required
def recovery(request: HttpRequest) -> HttpResponse:
    """The recovery codes: shown once right after they are made; a new set replaces the old."""
    user = _user(request)
    if not _verified(request):
        return redirect(f"{reverse('staff:verify')}?next={reverse('staff:recovery')}")
    if request.method == "POST":
        with access.keeping(request):
            codes = services.recovery_codes_regenerate(user=user)
        _keep_this_session(request, user)
        request.session[FRESH_CODES] = codes
        return redirect(reverse("staff:recovery"))
    codes = request.session.pop(FRESH_CODES, None)
    return render(
        request,
        "staff/recovery.html",
        {"codes": codes, "left": services.recovery_codes_left(user), "next": _next(request)},
    )

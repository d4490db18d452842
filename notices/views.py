from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from consult.models import Case, User
from notices.forms import NoticePreferenceForm
from notices.links import case_id_from_token
from notices.services import notice_preference_set, preference_for


def notice_link(request: HttpRequest, token: str) -> HttpResponse:
    """A notice's short link: to the case page, which checks who may see the case. A visitor who
    is not logged in goes through the login page first (the case page's own login_required)."""
    case_id = case_id_from_token(token)
    reference = Case.objects.filter(pk=case_id).values_list("reference", flat=True).first() if case_id else None
    if reference is None:
        raise Http404
    return redirect("case_detail", reference)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    current = preference_for(user)
    if request.method == "POST":
        form = NoticePreferenceForm(request.POST)
        if form.is_valid():
            try:
                notice_preference_set(user=user, channel=form.cleaned_data["channel"],
                                      opted_out=form.cleaned_data["opted_out"], email=form.cleaned_data["email"])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Your notice settings are saved."))
                return redirect("notice_preferences")
    else:
        form = NoticePreferenceForm(
            initial={"channel": current.channel, "opted_out": current.opted_out, "email": user.email}
        )
    return render(request, "notices/preferences.html", {"form": form, "phone": user.phone})

"""Files sent with an intake form, by document kind.

A form shown again with errors cannot give the browser its files back, so each good file is
checked and parked in storage under `staging/`; the page carries a signed token for it, and the
next submission adopts it into the new case. A resident never uploads the same report twice.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_stubs_ext import StrOrPromise

from consult import files, limits
from consult.errors import CaseError
from consult.models import Case, Document, DocumentKind, Skill, User

SALT = "consult.intake.staged"
SENT_TAG = "intake-sent"
STAGING_MAX_AGE = 60 * 60 * 24


@dataclass(frozen=True)
class Staged:
    key: str
    name: str
    kind: str
    token: str
    # A copy of a document of the resident's other case, chosen by them (a referral): shown apart,
    # whatever its kind.
    carried: bool = False

    @property
    def kind_label(self) -> str:
        return str(DocumentKind(self.kind).label)


@dataclass
class IntakeFiles:
    staged: list[Staged] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The file store failed: the page answers 503 (try again later), keeping what is parked.
    storage_down: bool = False

    def kinds_present(self) -> set[str]:
        return {s.kind for s in self.staged}

    def missing(self, required: list[str]) -> list[str]:
        present = self.kinds_present()
        return [str(DocumentKind(k).label) for k in required if k not in present]


def _token(user: User, key: str, name: str, kind: str, *, carried: bool = False) -> str:
    return signing.dumps({"u": user.pk, "k": key, "n": name, "t": kind, **({"c": 1} if carried else {})}, salt=SALT)


def parked_files(user: User, tokens: Sequence[str], kinds: list[str]) -> list[Staged]:
    """The parked files the tokens name: this user's, of the page's kinds (any kind if carried)."""
    staged = []
    for token in tokens:
        try:
            data: dict[str, Any] = signing.loads(token, salt=SALT, max_age=STAGING_MAX_AGE)
        except signing.BadSignature:
            continue
        carried = bool(data.get("c"))
        if data.get("u") == user.pk and (data.get("t") in kinds or (carried and data.get("t") in DocumentKind.values)):
            staged.append(Staged(key=data["k"], name=data["n"], kind=data["t"], token=token, carried=carried))
    return staged


def carry(*, user: User, documents: Sequence[Document]) -> list[Staged]:
    """Copies of `documents`, parked for `user`'s next intake as if sent with it (a referral: the
    resident chose them). The originals stay on their case. Raises StorageUnavailable."""
    carried = []
    for document in documents:
        with files.open_stored(document.storage_key) as handle:
            data = handle.read()
        key = f"staging/{user.pk}/{uuid.uuid4().hex}"
        files.store(key, data)
        name, kind = document.original_name, document.kind
        carried.append(
            Staged(key=key, name=name, kind=kind, token=_token(user, key, name, kind, carried=True), carried=True)
        )
    return carried


def referral_session_key(reference: str) -> str:
    """Where the tokens of the copies a referral from case `reference` carries wait, in the
    resident's session, for the intake it opens (medical/views.py `refer`, legal/views.py)."""
    return f"referral:{reference}"


def collect(request: HttpRequest, user: User, kinds: list[str]) -> IntakeFiles:
    """Files already parked (from the tokens) plus the new ones, each checked by its bytes."""
    result = IntakeFiles(staged=parked_files(user, request.POST.getlist("staged"), kinds))
    for kind in kinds:
        for upload in request.FILES.getlist(f"files_{kind}"):
            try:
                # The count of the case page's and the API's uploads (one per file, per user).
                limits.take("uploads", f"user:{user.pk}")
                checked = files.check_upload(upload, upload.name or "")
                key = f"staging/{user.pk}/{uuid.uuid4().hex}"
                files.store(key, checked.data)
            except limits.RateLimited as limited:
                result.errors.append(_("%(name)s: %(reason)s") % {"name": upload.name, "reason": limited.message})
            except files.UploadRefused as error:
                reason = " ".join(error.messages)
                result.errors.append(_("%(name)s: %(reason)s") % {"name": upload.name, "reason": reason})
            except files.ScannerUnavailable:
                result.storage_down = True
                result.errors.append(_("%(name)s: %(reason)s") % {"name": upload.name, "reason": files.SCANNER_DOWN})
            except files.StorageUnavailable:
                result.storage_down = True
                result.errors.append(
                    _("%(name)s: the file store cannot be reached right now. Please try again in a few minutes.")
                    % {"name": upload.name}
                )
            else:
                result.staged.append(
                    Staged(key=key, name=checked.name, kind=kind, token=_token(user, key, checked.name, kind))
                )
    return result


def read_staged(staged: Staged) -> io.BytesIO:
    with files.open_stored(staged.key) as handle:
        return io.BytesIO(handle.read())


# open_case(resident=..., data=cleaned data, staged=parked files, source_place=poster's place)
OpenCase = Callable[..., tuple[Case, list[str]]]


def poster_place(request: HttpRequest) -> str:
    """The place named in the poster's QR link (?place=...), kept through login and the form."""
    return " ".join(request.GET.get("place", "").split())[:100]


def page(
    request: HttpRequest,
    skill: Skill,
    *,
    form_class: type[forms.Form],
    kinds: list[str],
    open_case: OpenCase,
    template: str,
    steps: Sequence[StrOrPromise] = (),
    initial: dict[str, Any] | None = None,
    carried: Sequence[Staged] = (),
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """The intake page both domains share: the form (with a `skill` and a `materials_later`
    field), documents by kind, and the case opened by `open_case` once all is well. `initial`
    and `carried` fill the first showing (a referral: the words and the files it brings)."""
    assert isinstance(request.user, User)
    form = form_class(request.POST or None, initial={**(initial or {}), "skill": skill})
    response, parked = _handle(request, request.user, form, kinds, open_case)
    if response is not None:
        return response
    if request.method != "POST":
        parked.staged.extend(carried)
    return render(
        request,
        template,
        {
            "form": form,
            "skill": skill,
            "skills": Skill.objects.filter(kind=skill.kind, is_active=True),
            "kinds": [(k, DocumentKind(k).label) for k in kinds],
            "parked": parked,
            "step_titles": steps,
            **(context or {}),
        },
        status=503 if parked.storage_down else 200,
    )


def _handle(
    request: HttpRequest, user: User, form: forms.Form, kinds: list[str], open_case: OpenCase
) -> tuple[HttpResponse | None, IntakeFiles]:
    """Returns the response to send when the case was opened (else None: show the form again)
    and the files parked so far, for the page."""
    if request.method != "POST":
        return None, IntakeFiles()
    parked = collect(request, user, kinds)
    if form.is_valid():
        missing = parked.missing(form.cleaned_data["skill"].required_documents)
        if missing and not form.cleaned_data["materials_later"]:
            form.add_error(
                "materials_later",
                _("Still missing: %(list)s. Add them above, or tick this box to send without them.")
                % {"list": "、".join(missing)},
            )
    if not form.is_valid() or parked.errors:
        return None, parked
    try:
        case, problems = open_case(
            resident=user, data=form.cleaned_data, staged=parked.staged, source_place=poster_place(request)
        )
    except CaseError as error:
        for message in error.messages:
            messages.error(request, message)
        return None, parked
    except files.StorageUnavailable:
        # Nothing was created and the parked files are still there: the same form, sent again
        # later, opens the case with them.
        parked.storage_down = True
        messages.error(
            request,
            _(
                "The file store cannot be reached right now, so your case has not been sent yet. "
                "Your answers and files are kept here: please press Send again in a few minutes."
            ),
        )
        return None, parked
    # The tag tells the browser the case is sent, so the intake's draft kept on the device goes (once.js).
    message = _("Your case has been received. Its reference is %(ref)s.") % {"ref": case.reference}
    messages.success(request, message, extra_tags=SENT_TAG)
    for problem in problems:
        messages.error(request, problem)
    url = reverse("case_detail", kwargs={"reference": case.reference})
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"redirect": url}), parked
    return HttpResponseRedirect(url), parked

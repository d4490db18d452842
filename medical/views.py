from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import BigIntegerField, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from consult import files, intake, selectors
from consult.errors import CaseError
from consult.figures import rows_on
from consult.models import Case, DocumentKind, Kind, Skill, Status, User
from consult.once import submit_once
from consult.views import refused
from medical import services
from medical.forms import ConsultationNoteForm, HomeVisitRequestForm, HomeVisitScheduleForm, MedicalIntakeForm
from medical.models import ConsultationNote, HomeVisit, MedicalIntake, VisitStatus

INTAKE_KINDS: list[str] = [
    DocumentKind.EXAM_REPORT,
    DocumentKind.IMAGING,
    DocumentKind.PRESCRIPTION,
    DocumentKind.OTHER,
]


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def intake_view(request: HttpRequest, skill: Skill) -> HttpResponse:
    """The medical intake: one page, documents by kind, nothing lost when it comes back with errors."""
    return intake.page(
        request,
        skill,
        form_class=MedicalIntakeForm,
        kinds=INTAKE_KINDS,
        open_case=services.medical_case_from_form,
        template="medical/intake.html",
        steps=(gettext_lazy("What is wrong"), gettext_lazy("Documents and send")),
    )


def resolve_blocker(case: Case) -> str | None:
    if not ConsultationNote.objects.filter(case=case).exists():
        return _("Write the consultation note before marking the case resolved.")
    return None


def summary(case: Case) -> tuple[str, dict[str, Any]]:
    doctor = case.assignee
    return (
        "pdf/medical_summary.html",
        {
            "intake": MedicalIntake.objects.filter(case=case).first(),
            "note": ConsultationNote.objects.filter(case=case).first(),
            "doctor": doctor,
            "doctor_profile": getattr(doctor, "doctor", None) if doctor else None,
        },
    )


def figures(cases: QuerySet[Case]) -> dict[str, Any]:
    return {"home_visits_made": rows_on(HomeVisit.objects.filter(status=VisitStatus.DONE), cases).count()}


def case_context(case: Case, user: User) -> dict[str, Any]:
    note = ConsultationNote.objects.filter(case=case).first()
    is_assignee = case.assignee is not None and case.assignee.user_id == user.pk
    can_arrange = is_assignee or user.is_coordinator
    visits = list(HomeVisit.objects.filter(case=case))
    return {
        "intake": MedicalIntake.objects.filter(case=case).first(),
        "note": note,
        "note_form": ConsultationNoteForm(instance=note)
        if is_assignee and case.status in (Status.ACTIVE, Status.RESOLVED)
        else None,
        "visits": visits,
        "visit_request_form": HomeVisitRequestForm()
        if case.resident_id == user.pk and case.is_open and not any(v.is_open for v in visits)
        else None,
        "visit_schedule_form": HomeVisitScheduleForm() if can_arrange else None,
        "can_arrange_visit": can_arrange,
        # The resident may carry the consultation to the union's lawyers (an injury at work); the
        # page's own document list and timeline say what to offer and what was sent (no more reads).
        "can_refer": case.resident_id == user.pk and case.anonymised_at is None,
        "can_suggest_referral": is_assignee and case.anonymised_at is None,
    }


def _medical_case(request: HttpRequest, reference: str) -> Case:
    """The case if the user may see it and it is a medical one: these pages do not exist for others."""
    case = selectors.case_get_for_user(user=_user(request), reference=reference)
    if case.kind != Kind.MEDICAL:
        raise Http404
    return case


@login_required
@submit_once
def note_edit(request: HttpRequest, reference: str) -> HttpResponse:
    case = _medical_case(request, reference)
    if case.assignee is None or case.assignee.user_id != _user(request).pk:
        raise Http404
    note = ConsultationNote.objects.filter(case=case).first()
    form = ConsultationNoteForm(request.POST or None, instance=note)
    if request.method == "POST" and form.is_valid():
        try:
            services.note_save(
                case=case,
                professional=case.assignee,
                **{name: form.cleaned_data[name] for name in services.NOTE_FIELDS},
            )
        except CaseError as error:
            refused(request, error)
        else:
            messages.success(request, _("The note is saved. The resident can read it now."))
            return redirect("case_detail", reference=case.reference)
    return render(request, "medical/note_form.html", {"case": case, "form": form})


@require_POST
@login_required
@submit_once
def visit_request(request: HttpRequest, reference: str) -> HttpResponse:
    case = _medical_case(request, reference)
    form = HomeVisitRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("case_detail", reference=case.reference)
    try:
        services.home_visit_request(case=case, resident=_user(request), **form.cleaned_data)
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("Your request for a home visit has been sent."))
    return redirect("case_detail", reference=case.reference)


@require_POST
@login_required
@submit_once
def visit_update(request: HttpRequest, reference: str, visit_id: int, action: str) -> HttpResponse:
    case = _medical_case(request, reference)
    visit: HomeVisit = get_object_or_404(HomeVisit, case=case, pk=visit_id)
    try:
        if action == "schedule":
            form = HomeVisitScheduleForm(request.POST)
            if not form.is_valid():
                raise CaseError(" ".join(str(e) for errors in form.errors.values() for e in errors))
            when = form.cleaned_data["scheduled_for"]
            services.home_visit_schedule(visit=visit, user=_user(request), scheduled_for=when)
        elif action in (VisitStatus.DONE, VisitStatus.CANCELLED):
            services.home_visit_finish(visit=visit, user=_user(request), status=action)
        else:
            raise Http404
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("The home visit is updated."))
    return redirect("case_detail", reference=case.reference)


# --- referral to the union's lawyers -----------------------------------------------------------

# The labour dispute a consultation about an injury at work leads to (a service code); any open
# legal service when that one is not in the catalogue.
REFERRAL_SERVICE = "work-injury"


@require_POST
@login_required
@submit_once
def refer(request: HttpRequest, reference: str) -> HttpResponse:
    """The resident asks the union's lawyers about an injury at work: the documents they ticked
    are copied for the labour dispute's intake, which opens with the consultation's words."""
    case = _medical_case(request, reference)
    ids = [int(value) for value in request.POST.getlist("documents") if value.isdecimal()]
    # An id no row can have names no document (and SQLite refuses integers over 64 bits).
    ids = [i for i in ids if 0 < i <= BigIntegerField.MAX_BIGINT]
    try:
        carried = services.referral_carry(case=case, resident=_user(request), document_ids=ids)
    except CaseError as error:
        refused(request, error)
        return redirect("case_detail", reference=case.reference)
    except files.StorageUnavailable:
        messages.error(request, _("The file store cannot be reached right now. Please try again in a few minutes."))
        return redirect("case_detail", reference=case.reference)
    skills = Skill.objects.filter(kind=Kind.LEGAL, is_active=True)
    skill = skills.filter(code=REFERRAL_SERVICE).first() or skills.first()
    if skill is None:
        messages.error(request, _("The union's lawyers take no new disputes at the moment."))
        return redirect("case_detail", reference=case.reference)
    request.session[intake.referral_session_key(case.reference)] = [item.token for item in carried]
    return redirect(f"{reverse('case_new', args=[skill.code])}?{urlencode({'from': case.reference})}")


@require_POST
@login_required
@submit_once
def suggest_referral(request: HttpRequest, reference: str) -> HttpResponse:
    case = _medical_case(request, reference)
    try:
        services.referral_suggest(case=case, user=_user(request))
    except CaseError as error:
        refused(request, error)
    else:
        messages.success(request, _("The resident is told they can ask the union's lawyers for help."))
    return redirect("case_detail", reference=case.reference)

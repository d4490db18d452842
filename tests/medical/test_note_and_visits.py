"""The doctor's note (only the assignee writes it, every version kept, the resident reads it at
once), resolving only once it exists, and home visits from request to done or cancelled."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consult import services as core
from consult.errors import CaseError
from consult.models import Case, CaseEvent, DocumentKind, Professional, Status, User, Verb
from medical import services
from medical.models import ConsultationNote, HomeVisit, VisitStatus
from tests.consult import files_corpus
from tests.medical.conftest import ADVICE, body, t, write_note

NOTE_SAVED = "The note is saved. The resident can read it now."
NOTE_FIRST = "Write the consultation note before marking the case resolved."
IN_THE_FUTURE = "Choose a time in the future."
VISIT_SENT = "Your request for a home visit has been sent."
ADDRESS = "青山村三组12号"


def note_form(**overrides: str) -> dict[str, str]:
    data = {
        "findings": "胸片未见明显异常，血常规白细胞略高。", "impression": "急性支气管炎。", "advice": ADVICE,
        "recommended_tests": "", "urgency": "routine", "follow_up_date": "", "referral_hospital": "",
        "referral_department": "",
    }
    data.update(overrides)
    return data


def person(request: pytest.FixtureRequest, who: str) -> User:
    someone = request.getfixturevalue(who)
    return someone.user if isinstance(someone, Professional) else someone


def case_url(case: Case) -> str:
    return reverse("case_detail", args=[case.reference])


def note_url(case: Case) -> str:
    return reverse("medical:note_edit", args=[case.reference])


def visit_url(case: Case, visit: HomeVisit, action: str) -> str:
    return reverse("medical:visit_update", args=[case.reference, visit.pk, action])


def local_input(when: Any) -> str:
    """A time as the browser's datetime-local field sends it: local time, to the minute."""
    return str(timezone.localtime(when).strftime("%Y-%m-%dT%H:%M"))


# --- the note ---------------------------------------------------------------------------------


def test_it_shows_the_note_to_the_resident_right_after_the_doctor_saves_it(
    active_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    resident = login(alice)
    assert ADVICE not in body(resident.get(case_url(active_case)))

    saved = login(doctor.user).post(note_url(active_case), note_form(), follow=True)

    assert saved.redirect_chain == [(case_url(active_case), 302)]
    assert t("zh-hans", NOTE_SAVED) in body(saved)
    page = body(resident.get(case_url(active_case)))
    assert ADVICE in page
    assert "急性支气管炎。" in page
    assert t("zh-hans", "Write the note") not in page


def test_it_keeps_every_saved_version_of_the_note_whole_in_the_timeline(
    active_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    client = login(doctor.user)
    client.post(note_url(active_case), note_form())
    edited_advice = "改为住院观察，明天上午到市第一人民医院呼吸科。"

    client.post(
        note_url(active_case),
        note_form(
            advice=edited_advice, urgency="soon", referral_hospital="市第一人民医院", referral_department="呼吸科"
        ),
    )

    note = ConsultationNote.objects.get(case=active_case)
    assert (note.version, note.advice, note.urgency) == (2, edited_advice, "soon")
    events = list(CaseEvent.objects.filter(case=active_case, verb=Verb.NOTE_SAVED).order_by("pk"))
    assert [e.actor_id for e in events] == [doctor.user_id, doctor.user_id]
    first, second = (e.detail for e in events)
    assert first == {
        "version": 1, "findings": "胸片未见明显异常，血常规白细胞略高。", "impression": "急性支气管炎。",
        "advice": ADVICE, "recommended_tests": "", "urgency": "routine", "follow_up_date": "",
        "referral_hospital": "", "referral_department": "",
    }
    assert second["version"] == 2
    assert second["advice"] == edited_advice
    assert (second["urgency"], second["referral_hospital"], second["referral_department"]) == (
        "soon", "市第一人民医院", "呼吸科"
    )
    page = body(login(alice).get(case_url(active_case)))
    assert edited_advice in page
    assert ADVICE not in page


@pytest.mark.parametrize("who", ["alice", "bob", "other_doctor", "lawyer", "coordinator"])
def test_it_lets_only_the_assigned_doctor_open_or_post_the_note_page(
    who: str, request: pytest.FixtureRequest, active_case: Case, login: Callable[..., Client]
) -> None:
    client = login(person(request, who))

    assert client.get(note_url(active_case)).status_code == 404
    assert client.post(note_url(active_case), note_form()).status_code == 404
    assert not ConsultationNote.objects.exists()


def test_it_refuses_a_note_from_a_doctor_the_case_is_not_assigned_to(
    active_case: Case, other_doctor: Professional
) -> None:
    with pytest.raises(CaseError):
        write_note(active_case, other_doctor)

    assert not ConsultationNote.objects.exists()
    assert not CaseEvent.objects.filter(verb=Verb.NOTE_SAVED).exists()


def test_it_refuses_a_note_before_the_doctor_accepts_the_case(
    medical_case: Callable[..., Case], doctor: Professional
) -> None:
    case = medical_case()
    assert case.status == Status.ASSIGNED

    with pytest.raises(CaseError):
        write_note(case, doctor)

    assert not ConsultationNote.objects.exists()


def test_it_refuses_to_resolve_a_case_without_a_note(
    active_case: Case, doctor: Professional, login: Callable[..., Client]
) -> None:
    refused = login(doctor.user).post(
        reverse("case_action", args=[active_case.reference, "resolve"]), follow=True
    )

    active_case.refresh_from_db()
    assert active_case.status == Status.ACTIVE
    assert t("zh-hans", NOTE_FIRST) in body(refused)
    with pytest.raises(CaseError):
        core.case_resolve(case=active_case, professional=doctor)

    write_note(active_case, doctor)
    assert core.case_resolve(case=active_case, professional=doctor).status == Status.RESOLVED


# --- home visits ------------------------------------------------------------------------------


def test_it_takes_a_home_visit_from_request_through_schedule_to_done(
    active_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    resident, physician = login(alice), login(doctor.user)

    asked = resident.post(
        reverse("medical:visit_request", args=[active_case.reference]),
        {"address": ADDRESS, "preferred_dates": "工作日上午"}, follow=True,
    )

    visit = HomeVisit.objects.get(case=active_case)
    assert (visit.status, visit.address, visit.preferred_dates, visit.requested_by_id) == (
        VisitStatus.REQUESTED, ADDRESS, "工作日上午", alice.pk
    )
    assert t("zh-hans", VISIT_SENT) in body(asked)
    for client in (resident, physician):
        page = body(client.get(case_url(active_case)))
        assert f'<span class="status">{t("zh-hans", "Requested")}</span>' in page
        assert ADDRESS in page

    when = timezone.now() + timedelta(days=2)
    physician.post(visit_url(active_case, visit, "schedule"), {"scheduled_for": local_input(when)})

    visit.refresh_from_db()
    assert visit.status == VisitStatus.SCHEDULED
    assert visit.scheduled_for is not None
    assert abs(visit.scheduled_for - when) < timedelta(minutes=1)
    for client in (resident, physician):
        assert f'<span class="status">{t("zh-hans", "Scheduled")}</span>' in body(client.get(case_url(active_case)))

    physician.post(visit_url(active_case, visit, VisitStatus.DONE))

    visit.refresh_from_db()
    assert visit.status == VisitStatus.DONE
    for client in (resident, physician):
        assert f'<span class="status">{t("zh-hans", "Done")}</span>' in body(client.get(case_url(active_case)))
    verbs = list(CaseEvent.objects.filter(case=active_case, verb__startswith="visit_").values_list("verb", "actor"))
    assert verbs == [
        (Verb.VISIT_REQUESTED, alice.pk), (Verb.VISIT_SCHEDULED, doctor.user_id), (Verb.VISIT_DONE, doctor.user_id)
    ]


def test_it_lets_a_coordinator_schedule_the_visit(
    active_case: Case, alice: User, coordinator: User, login: Callable[..., Client]
) -> None:
    visit = services.home_visit_request(case=active_case, resident=alice, address=ADDRESS, preferred_dates="周末")

    login(coordinator).post(
        visit_url(active_case, visit, "schedule"), {"scheduled_for": local_input(timezone.now() + timedelta(days=1))}
    )

    visit.refresh_from_db()
    assert visit.status == VisitStatus.SCHEDULED


def test_it_refuses_a_visit_time_in_the_past(
    active_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    visit = services.home_visit_request(case=active_case, resident=alice, address=ADDRESS, preferred_dates="周末")
    yesterday = timezone.now() - timedelta(days=1)

    refused = login(doctor.user).post(
        visit_url(active_case, visit, "schedule"), {"scheduled_for": local_input(yesterday)}, follow=True
    )

    visit.refresh_from_db()
    assert (visit.status, visit.scheduled_for) == (VisitStatus.REQUESTED, None)
    assert t("zh-hans", IN_THE_FUTURE) in body(refused)
    with pytest.raises(CaseError):
        services.home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=yesterday)


def test_it_lets_the_resident_cancel_the_visit_but_not_schedule_it(
    active_case: Case, alice: User, doctor: Professional, login: Callable[..., Client]
) -> None:
    visit = services.home_visit_request(case=active_case, resident=alice, address=ADDRESS, preferred_dates="周末")
    resident = login(alice)

    resident.post(
        visit_url(active_case, visit, "schedule"), {"scheduled_for": local_input(timezone.now() + timedelta(days=1))}
    )
    visit.refresh_from_db()
    assert visit.status == VisitStatus.REQUESTED

    resident.post(visit_url(active_case, visit, VisitStatus.CANCELLED))

    visit.refresh_from_db()
    assert visit.status == VisitStatus.CANCELLED
    cancelled = f'<span class="status">{t("zh-hans", "Cancelled")}</span>'
    assert cancelled in body(resident.get(case_url(active_case)))
    assert cancelled in body(login(doctor.user).get(case_url(active_case)))
    with pytest.raises(CaseError):
        services.home_visit_finish(visit=visit, user=doctor.user, status=VisitStatus.DONE)


@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer"])
def test_it_answers_404_to_outsiders_on_every_visit_url(
    who: str, request: pytest.FixtureRequest, active_case: Case, alice: User, login: Callable[..., Client]
) -> None:
    visit = services.home_visit_request(case=active_case, resident=alice, address=ADDRESS, preferred_dates="周末")
    client = login(person(request, who))
    tomorrow = {"scheduled_for": local_input(timezone.now() + timedelta(days=1))}

    asked = client.post(
        reverse("medical:visit_request", args=[active_case.reference]),
        {"address": "别处", "preferred_dates": "随时"},
    )
    assert asked.status_code == 404
    assert client.post(visit_url(active_case, visit, "schedule"), tomorrow).status_code == 404
    assert client.post(visit_url(active_case, visit, VisitStatus.DONE)).status_code == 404
    assert client.post(visit_url(active_case, visit, VisitStatus.CANCELLED)).status_code == 404

    visit.refresh_from_db()
    assert visit.status == VisitStatus.REQUESTED
    assert HomeVisit.objects.count() == 1


# --- the case page ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "doctor"])
def test_it_shows_a_case_with_note_documents_and_visit_in_a_bounded_number_of_queries(
    who: str, request: pytest.FixtureRequest, noted_case: Case, alice: User, doctor: Professional,
    login: Callable[..., Client], django_assert_max_num_queries: Any,
) -> None:
    for n in range(3):
        core.document_add(
            case=noted_case, uploader=alice, upload=io.BytesIO(files_corpus.jpeg(seed=100 + n)),
            name=f"化验单{n}.jpg", kind=DocumentKind.EXAM_REPORT,
        )
    visit = services.home_visit_request(case=noted_case, resident=alice, address=ADDRESS, preferred_dates="周末")
    services.home_visit_schedule(visit=visit, user=doctor.user, scheduled_for=timezone.now() + timedelta(days=1))
    client = login(person(request, who))

    # 9 today for either side: session, user, case, note check, note, visits, intake, documents, timeline;
    # the doctor's also the device of the second factor the session proved, the case's notices and
    # the line recording this read on the timeline (once in 30 minutes: a reload writes none), and how
    # far the others have read the chat (its read marks shown on the page).
    with django_assert_max_num_queries(14):
        page = client.get(case_url(noted_case))

    assert page.status_code == 200
    shown = body(page)
    assert ADVICE in shown and "化验单2.jpg" in shown and ADDRESS in shown

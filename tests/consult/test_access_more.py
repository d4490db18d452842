"""Who may reach what, continued: the pages added after test_access.py, for every member of the cast.

Each case-scoped URL is tried on a case of its own domain (the consult ones on a medical and on a
legal case): alice owns it, its assignee works it, a professional of the same skill and one of the
other kind are not on it, a coordinator oversees it. A refused request changes nothing and shows
nothing of the case; a case someone may not see answers exactly as a case that does not exist.
"""

from __future__ import annotations

import html
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.test import Client
from django.urls import URLPattern, resolve, reverse
from django.utils import timezone

from consult import files, selectors, services
from consult.models import (
    Case,
    CaseEvent,
    Document,
    DocumentKind,
    Kind,
    Message,
    Poster,
    Professional,
    Rating,
    Role,
    Skill,
    Status,
    User,
    Verb,
)
from legal import services as legal_services
from legal.models import (
    CityRates,
    EmployerContact,
    LegalAidFund,
    MediationOutcome,
    MediationSession,
    Result,
    WorkLog,
)
from medical import services as medical_services
from medical.models import ConsultationNote, HomeVisit, VisitStatus
from tests.consult import files_corpus as corpus

OWNER = "owner"
OTHER_RESIDENT = "other_resident"
ASSIGNEE = "assignee"
SAME_SKILL = "same_skill_professional"
OTHER_KIND = "other_kind_professional"
COORDINATOR = "coordinator"
ANONYMOUS = "anonymous"
ROLES = (OWNER, OTHER_RESIDENT, ASSIGNEE, SAME_SKILL, OTHER_KIND, COORDINATOR, ANONYMOUS)
OUTSIDERS = (OTHER_RESIDENT, SAME_SKILL, OTHER_KIND)

# Outcomes: a status code, or a redirect named by where it goes.
OK, NOT_FOUND, NOT_ALLOWED = "200", "404", "405"
TO_LOGIN = "redirect to login"
TO_CASE = "redirect to the case"
TO_POSTER = "redirect to the new poster"
TO_INTAKE = "redirect to the labour dispute's intake, from the case"
REFUSED = (NOT_FOUND, NOT_ALLOWED, TO_LOGIN)

MEDICAL, LEGAL = Kind.MEDICAL.value, Kind.LEGAL.value

COMPLAINT = "咳嗽两周，夜里加重，有点发烧。"
MEDICINES = "阿莫西林胶囊"
ADVICE = "多喝温水，按时服药，一周后复查胸片。"
DISPUTE = "病假20天，公司只发了802元，低于法定标准。"
EMPLOYER = "杭州某纺织有限公司"


def _everyone(outcome: str) -> dict[str, str]:
    return dict.fromkeys(ROLES, outcome)


def _signed_in(outcome: str) -> dict[str, str]:
    return {**_everyone(outcome), ANONYMOUS: TO_LOGIN}


def _only(roles: dict[str, str], default: str = NOT_FOUND) -> dict[str, str]:
    return {**_signed_in(default), **roles}


def _post_only(outcomes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"GET": _everyone(NOT_ALLOWED), "POST": outcomes}


ON_THE_CASE = _only({OWNER: OK, ASSIGNEE: OK, COORDINATOR: OK})
BACK_TO_CASE = _only({OWNER: TO_CASE, ASSIGNEE: TO_CASE, COORDINATOR: TO_CASE})
COORDINATOR_ONLY = _only({COORDINATOR: OK})
# The legal records only the lawyer on the case makes: anyone else is a 404, even on the case.
LAWYER_RECORDS = ("contact", "session", "outcome", "hours")
VISIT_ACTIONS = ("schedule", "done", "cancelled")

# url key -> method -> role -> outcome
MATRIX: dict[str, dict[str, dict[str, str]]] = {
    "document_upload": _post_only(BACK_TO_CASE),
    "document_download": {"GET": ON_THE_CASE, "POST": _everyone(NOT_ALLOWED)},
    "summary_request": _post_only(BACK_TO_CASE),
    "receipt": {"GET": ON_THE_CASE},
    # The assignee and the coordinator see the case, so they reach the view; the service refuses.
    "rate": _post_only(BACK_TO_CASE),
    "verify_document": {"GET": _everyone(OK), "POST": _everyone(OK)},
    "track": {"GET": _everyone(OK), "POST": _everyone(OK)},
    "figures": {"GET": _everyone(OK)},
    "report": {"GET": COORDINATOR_ONLY},
    "report_csv": {"GET": COORDINATOR_ONLY},
    "posters": {"GET": COORDINATOR_ONLY, "POST": _only({COORDINATOR: TO_POSTER})},
    "poster_pdf": {"GET": COORDINATOR_ONLY},
    # Only the doctor on the case writes the note: the resident and the coordinator get 404 too.
    "note_edit": {"GET": _only({ASSIGNEE: OK}), "POST": _only({ASSIGNEE: TO_CASE})},
    "visit_request": _post_only(BACK_TO_CASE),
    **{f"visit_update:{action}": _post_only(BACK_TO_CASE) for action in VISIT_ACTIONS},
    # Only the resident carries her consultation to the union (the others on it see the case: the
    # service refuses them); only the doctor on it suggests that she does.
    "refer": _post_only({**BACK_TO_CASE, OWNER: TO_INTAKE}),
    "suggest_referral": _post_only(BACK_TO_CASE),
    **{f"record:{what}": _post_only(_only({ASSIGNEE: TO_CASE})) for what in LAWYER_RECORDS},
    "record:payment": _post_only(BACK_TO_CASE),
    # The labour intake's estimate while typing: figures in, an estimate out, nothing of any case.
    "estimate_preview": {"GET": _signed_in(OK), "POST": _everyone(NOT_ALLOWED)},
}

CONSULT_CASE_KEYS = ("document_upload", "document_download", "summary_request", "receipt", "rate")
MEDICAL_KEYS = (
    "note_edit", "visit_request", *(f"visit_update:{a}" for a in VISIT_ACTIONS), "refer", "suggest_referral"
)
LEGAL_KEYS = tuple(f"record:{what}" for what in (*LAWYER_RECORDS, "payment"))
CASE_KEYS = (*CONSULT_CASE_KEYS, *MEDICAL_KEYS, *LEGAL_KEYS)
PUBLIC_KEYS = ("verify_document", "track", "figures", "estimate_preview")
DOMAINS_OF: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(MATRIX, (MEDICAL,)),
    **dict.fromkeys(CONSULT_CASE_KEYS, (MEDICAL, LEGAL)),
    **dict.fromkeys(LEGAL_KEYS, (LEGAL,)),
}

# What an allowed request changes (an entry of _snapshot); every other request changes nothing.
CHANGES: dict[tuple[str, str, str], str] = {
    **{("document_upload", "POST", role): "documents" for role in (OWNER, ASSIGNEE, COORDINATOR)},
    # Opening a document is written to the audit trail.
    **{("document_download", "GET", role): "events" for role in (OWNER, ASSIGNEE, COORDINATOR)},
    **{("summary_request", "POST", role): "documents" for role in (OWNER, ASSIGNEE, COORDINATOR)},
    ("rate", "POST", OWNER): "ratings",
    ("posters", "POST", COORDINATOR): "posters",
    ("note_edit", "POST", ASSIGNEE): "notes",
    ("visit_request", "POST", OWNER): "visits",
    ("suggest_referral", "POST", ASSIGNEE): "events",
    **{(f"visit_update:{a}", "POST", role): "visits" for a in VISIT_ACTIONS for role in (ASSIGNEE, COORDINATOR)},
    ("visit_update:cancelled", "POST", OWNER): "visits",
    ("record:contact", "POST", ASSIGNEE): "contacts",
    ("record:session", "POST", ASSIGNEE): "sessions",
    ("record:outcome", "POST", ASSIGNEE): "outcomes",
    ("record:hours", "POST", ASSIGNEE): "work_logs",
    ("record:payment", "POST", ASSIGNEE): "outcomes",
    ("record:payment", "POST", COORDINATOR): "outcomes",
}

ROWS = [
    pytest.param(domain, role, key, method, outcome, id=f"{domain}-{role}-{method}-{key}")
    for key, methods in MATRIX.items()
    for domain in DOMAINS_OF[key]
    for method, outcomes in methods.items()
    for role, outcome in outcomes.items()
]


@dataclass
class World:
    case: Case
    cast: dict[str, User | None]
    # What no refused request and no public page may show: the case's content and who sent it.
    secrets: list[str]
    document: Document
    visit: HomeVisit | None = None
    summary: Document | None = None
    poster: Poster | None = None


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Any) -> None:
    """Uploads and summaries of one test go to a folder of its own."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private", "base_url": None},
        },
    }


@pytest.fixture(autouse=True)
def fresh_public_caches() -> None:
    # Tracking is limited per address and the figures are cached: each test starts from neither.
    cache.delete("track:127.0.0.1")
    cache.delete("figures:public")


@pytest.fixture
def other_lawyer(professional_factory: Callable[..., Professional], sick_pay: Skill) -> Professional:
    """A sick-pay lawyer who is not on the case (off duty, so matching skips them)."""
    return professional_factory([sick_pay], role=Role.LAWYER, name="孙律师", on_duty=False)


def _medical_case(alice: User, respiratory: Skill, doctor: Professional) -> Case:
    """Alice's consultation, accepted by `doctor`, with the note written (so a summary can be made)."""
    case, problems = medical_services.medical_case_submit(
        resident=alice, skill=respiratory, complaint=COMPLAINT, since_when="两周", patient_age=58,
        patient_sex="female", health_consent=True, medicines=MEDICINES,
    )
    assert problems == []
    assert case.assignee == doctor
    case = services.case_accept(case=case, professional=doctor)
    medical_services.note_save(
        case=case, professional=doctor, findings="胸片未见明显异常。", impression="急性支气管炎。", advice=ADVICE
    )
    return case


def _legal_case(alice: User, sick_pay: Skill, lawyer: Professional) -> Case:
    """Alice's sick-pay dispute, accepted by `lawyer`, settled (so a payment and a summary can follow)."""
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    case, problems = legal_services.legal_case_submit(
        resident=alice, skill=sick_pay, share_consent=True, job_title="纺织厂挡车工",
        employment_start=date(2019, 3, 1), employer_name=EMPLOYER, what_happened=DISPUTE,
        monthly_wage=Decimal("4000"), amount_received=Decimal("802"), amount_claimed=Decimal("1400"),
        desired_outcome="补发病假工资差额。", city="杭州", sick_days=20,
    )
    assert problems == []
    assert case.assignee == lawyer
    case = services.case_accept(case=case, professional=lawyer)
    legal_services.outcome_record(
        case=case, professional=lawyer, result=Result.SETTLED, amount_agreed=Decimal("1400.00"),
        payment_due=timezone.localdate() + timedelta(days=30), terms="公司于30日内补发差额。",
    )
    return case


@pytest.fixture
def build(
    alice: User, bob: User, doctor: Professional, other_doctor: Professional, lawyer: Professional,
    other_lawyer: Professional, coordinator: User, respiratory: Skill, sick_pay: Skill,
) -> Callable[[str, str], World]:
    """The case of `domain` in the state `key` needs, and the cast around it."""

    def make(domain: str, key: str) -> World:
        # The union's fund exists whatever the case: the hours it pays must still go to lawyers only.
        LegalAidFund.objects.create(name="市总工会法律援助基金", hourly_rate=Decimal("200"))
        if domain == MEDICAL:
            case = _medical_case(alice, respiratory, doctor)
            assignee, same_skill, other_kind = doctor, other_doctor, lawyer
            content = [COMPLAINT, MEDICINES, ADVICE]
        else:
            case = _legal_case(alice, sick_pay, lawyer)
            assignee, same_skill, other_kind = lawyer, other_lawyer, doctor
            content = [DISPUTE, EMPLOYER]
        document, _created = services.document_add(
            case=case, uploader=alice, upload=io.BytesIO(corpus.pdf(title="Exam report")), name="检查报告.pdf",
            kind=DocumentKind.OTHER,
        )
        world = World(
            case=case,
            cast={
                OWNER: alice, OTHER_RESIDENT: bob, ASSIGNEE: assignee.user, SAME_SKILL: same_skill.user,
                OTHER_KIND: other_kind.user, COORDINATOR: coordinator, ANONYMOUS: None,
            },
            secrets=[case.description, *content, alice.name, alice.phone],
            document=document,
        )
        if key == "rate":
            # Only a closed case is rated; how it got closed is not what this test is about.
            Case.objects.filter(pk=case.pk).update(status=Status.CLOSED, closed_at=timezone.now())
        if key.startswith("visit_update:"):
            # Written directly: the services refuse a visit on a legal case, and the test needs one
            # there to prove the URL refuses it too.
            world.visit = HomeVisit.objects.create(
                case=case, requested_by=alice, address="青山村5号", preferred_dates="工作日上午",
                status=VisitStatus.SCHEDULED, scheduled_for=timezone.now() + timedelta(days=2),
            )
        if key == "verify_document":
            world.summary = services.summary_generate(case=case, actor=assignee.user)
        if key == "poster_pdf":
            world.poster = services.poster_create(skill=respiratory, place="青山村村委会", user=coordinator)
        world.case.refresh_from_db()
        return world

    return make


def _url(key: str, world: World, reference: str) -> str:
    name, _, arg = key.partition(":")
    if name in ("document_upload", "summary_request", "receipt", "rate"):
        return reverse(name, args=[reference])
    if name == "document_download":
        return reverse(name, args=[reference, world.document.pk])
    if name in ("note_edit", "visit_request", "refer", "suggest_referral"):
        return reverse(f"medical:{name}", args=[reference])
    if name == "visit_update":
        assert world.visit is not None
        return reverse("medical:visit_update", args=[reference, world.visit.pk, arg])
    if name == "record":
        return reverse("legal:record", args=[reference, arg])
    if name == "estimate_preview":
        return reverse("legal:estimate_preview")
    if name == "verify_document":
        assert world.summary is not None and world.summary.verification_code
        return reverse(name, args=[world.summary.verification_code])
    if name == "poster_pdf":
        assert world.poster is not None
        return reverse(name, args=[world.poster.pk])
    return reverse(name)


def _data(key: str, world: World) -> dict[str, Any]:
    """A valid form for `key`: a refusal is then about who asks, never about what was sent."""
    today = timezone.localdate()
    if key == "document_upload":
        upload = SimpleUploadedFile("复查报告.pdf", corpus.pdf(title="Follow-up"), content_type="application/pdf")
        return {"files": [upload], "kind": DocumentKind.OTHER}
    if key == "rate":
        return {"score": "5", "comment": "很满意"}
    if key == "verify_document":
        assert world.summary is not None
        with files.open_stored(world.summary.storage_key) as handle:
            data = handle.read()
        return {"file": SimpleUploadedFile("summary.pdf", data, content_type="application/pdf")}
    if key == "track":
        owner = world.cast[OWNER]
        assert owner is not None
        return {"reference": world.case.reference, "phone_last4": owner.phone[-4:]}
    if key == "posters":
        return {"skill": world.case.skill.pk, "place": "青山村村委会"}
    if key == "note_edit":
        return {"findings": "复查胸片清晰。", "impression": "好转。", "advice": "继续观察。", "urgency": "routine"}
    if key == "visit_request":
        return {"address": "青山村5号", "preferred_dates": "工作日上午"}
    if key == "refer":
        return {"documents": [str(world.document.pk)]}
    if key == "visit_update:schedule":
        when = timezone.localtime(timezone.now() + timedelta(days=3))
        return {"scheduled_for": when.strftime("%Y-%m-%d %H:%M")}
    if key == "record:contact":
        return {"day": today.isoformat(), "channel": "phone", "result": "人事部同意面谈。"}
    if key == "record:session":
        return {"day": today.isoformat(), "mode": "in_person", "attendees": "双方", "notes": "达成初步意向。"}
    if key == "record:outcome":
        return {
            "result": Result.SETTLED, "amount_agreed": "1500", "terms": "补发差额。",
            "payment_due": (today + timedelta(days=20)).isoformat(),
        }
    if key == "record:payment":
        return {"amount": "300", "day": today.isoformat()}
    if key == "record:hours":
        return {"day": today.isoformat(), "hours": "1.5", "note": "调解准备"}
    return {}


def _send(client: Client, method: str, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data) if method == "POST" else client.get(url)


def _snapshot() -> dict[str, Any]:
    """Every row a request to these pages could add or change."""
    return {
        "cases": list(Case.objects.order_by("pk").values_list("pk", "status", "assignee_id")),
        "events": CaseEvent.objects.count(),
        "messages": Message.objects.count(),
        "documents": Document.objects.count(),
        "notes": list(ConsultationNote.objects.order_by("pk").values_list("pk", "version", "advice")),
        "visits": list(HomeVisit.objects.order_by("pk").values_list("pk", "status", "scheduled_for")),
        "contacts": EmployerContact.objects.count(),
        "sessions": MediationSession.objects.count(),
        "outcomes": list(
            MediationOutcome.objects.order_by("pk").values_list(
                "pk", "result", "amount_agreed", "amount_received", "recorded_at"
            )
        ),
        "work_logs": WorkLog.objects.count(),
        "ratings": list(Rating.objects.order_by("pk").values_list("pk", "score")),
        "posters": Poster.objects.count(),
    }


def _text(response: Any) -> str:
    if response.streaming:
        return ""
    return html.unescape(response.content.decode(errors="replace"))


def _assert_reveals_nothing(response: Any, secrets: list[str]) -> None:
    text = _text(response)
    for secret in secrets:
        assert secret not in text


def _missing_reference(case: Case) -> str:
    return "Z" * len(case.reference) if case.reference != "Z" * len(case.reference) else "Y" * len(case.reference)


def _assert_outcome(response: Any, outcome: str, url: str, world: World) -> None:
    if outcome in (OK, NOT_FOUND, NOT_ALLOWED):
        assert response.status_code == int(outcome)
        return
    assert response.status_code == 302
    expected = {
        TO_LOGIN: f"{reverse('login')}?next={quote(url)}",
        TO_CASE: reverse("case_detail", args=[world.case.reference]),
        TO_INTAKE: f"{reverse('case_new', args=['sick-pay'])}?from={world.case.reference}",
    }
    if outcome == TO_POSTER:
        poster = Poster.objects.latest("pk")
        assert poster.created_by == world.cast[COORDINATOR]
        expected[TO_POSTER] = reverse("poster_pdf", args=[poster.pk])
    assert response["Location"] == expected[outcome]


def _assert_shows_what_it_should(key: str, method: str, response: Any, world: World) -> None:
    """An allowed page is the real page, not an empty one."""
    if key == "document_download":
        with files.open_stored(world.document.storage_key) as handle:
            assert b"".join(response.streaming_content) == handle.read()
        response.close()
    elif key == "receipt":
        assert world.case.reference in _text(response)
    elif key == "verify_document":
        assert response.context["document"] == world.summary
        assert response.context["matches"] is (True if method == "POST" else None)
    elif key == "track" and method == "POST":
        result = response.context["result"]
        assert result is not None
        assert (result.reference, result.status) == (world.case.reference, world.case.status)
    elif key == "report_csv":
        assert response["Content-Type"].startswith("text/csv")
    elif key == "poster_pdf":
        assert response.content.startswith(b"%PDF-")
    elif key == "note_edit":
        assert response.context["case"] == world.case


@pytest.mark.parametrize(("domain", "role", "key", "method", "outcome"), ROWS)
def test_it_gives_each_role_exactly_its_access_to_each_new_url(
    domain: str, role: str, key: str, method: str, outcome: str, build: Callable[[str, str], World],
    login: Callable[..., Client],
) -> None:
    world = build(domain, key)
    client = login(world.cast[role])
    url = _url(key, world, world.case.reference)
    before = _snapshot()

    response = _send(client, method, url, _data(key, world))

    _assert_outcome(response, outcome, url, world)
    after = _snapshot()
    changed = CHANGES.get((key, method, role))
    if changed is not None:
        assert after[changed] != before[changed]
    else:
        assert after == before
    if outcome == OK:
        _assert_shows_what_it_should(key, method, response, world)
    if outcome in REFUSED or (outcome == TO_CASE and changed is None):
        _assert_reveals_nothing(response, world.secrets)
    if key in PUBLIC_KEYS:
        _assert_reveals_nothing(response, world.secrets)
    if key in CASE_KEYS and outcome == NOT_FOUND:
        # Forbidden and missing must not be told apart: the same status, the same bytes.
        missing = _send(client, method, _url(key, world, _missing_reference(world.case)), _data(key, world))
        assert missing.status_code == 404
        assert missing["Content-Type"] == response["Content-Type"]
        assert missing.content == response.content
        assert _snapshot() == before


def test_every_new_url_is_in_the_matrix() -> None:
    from consult import urls
    from legal import urls as legal_urls
    from medical import urls as medical_urls

    new_names = {
        "document_upload", "document_download", "summary_request", "verify_document", "receipt", "rate",
        "track", "figures", "report", "report_csv", "posters", "poster_pdf",
    }
    def names(patterns: list[Any]) -> set[str]:
        return {p.name for p in patterns if isinstance(p, URLPattern) and p.name}

    assert new_names <= names(urls.urlpatterns)
    medical = {"note_edit", "visit_request", "visit_update", "refer", "suggest_referral"}
    assert names(medical_urls.urlpatterns) == medical
    assert names(legal_urls.urlpatterns) == {"record", "estimate_preview"}
    covered = {key.partition(":")[0] for key in MATRIX}
    assert covered == new_names | medical | {"record", "estimate_preview"}
    # Every role has an expected outcome on every URL and method.
    assert all(set(outcomes) == set(ROLES) for methods in MATRIX.values() for outcomes in methods.values())


def _allowed_role(key: str) -> tuple[str, str]:
    """A role and method that get through on `key` (the first the matrix lets in)."""
    for method, outcomes in MATRIX[key].items():
        for role, outcome in outcomes.items():
            if outcome in (OK, TO_INTAKE) or (key, method, role) in CHANGES:
                return role, method
    raise AssertionError(f"nobody gets through on {key}")


CASE_KEY_ROWS = [
    pytest.param(domain, key, id=f"{domain}-{key}") for key in CASE_KEYS for domain in DOMAINS_OF[key]
]


@pytest.mark.parametrize(("domain", "key"), CASE_KEY_ROWS)
def test_it_asks_case_get_for_user_before_answering_any_case_url(
    domain: str, key: str, build: Callable[[str, str], World], login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = build(domain, key)
    role, method = _allowed_role(key)
    user = world.cast[role]
    url = _url(key, world, world.case.reference.lower())
    # The view module's own `selectors` (each does `from consult import selectors`): a view that
    # imports the function by name, or finds the case another way, escapes the spy and fails here.
    view_module = sys.modules[resolve(url).func.__module__]
    assert view_module.selectors is selectors
    real = selectors.case_get_for_user
    calls: list[tuple[Any, str]] = []

    def spy(*, user: Any, reference: str) -> Case:
        calls.append((user, reference))
        return real(user=user, reference=reference)

    monkeypatch.setattr(view_module.selectors, "case_get_for_user", spy)
    response = _send(login(user), method, url, _data(key, world))

    assert response.status_code in (200, 302)
    assert calls and calls[0] == (user, world.case.reference.lower())
    response.close()


@pytest.mark.parametrize(("domain", "key"), CASE_KEY_ROWS)
def test_it_refuses_everyone_on_a_case_url_when_case_get_for_user_refuses(
    domain: str, key: str, build: Callable[[str, str], World], login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = build(domain, key)
    role, method = _allowed_role(key)
    url = _url(key, world, world.case.reference)
    view_module = sys.modules[resolve(url).func.__module__]

    def refuse(*, user: Any, reference: str) -> Case:
        raise Http404("No such case")

    monkeypatch.setattr(view_module.selectors, "case_get_for_user", refuse)
    before = _snapshot()
    response = _send(login(world.cast[role]), method, url, _data(key, world))

    assert response.status_code == 404
    assert _snapshot() == before
    _assert_reveals_nothing(response, world.secrets)


CROSS_DOMAIN_ROWS = [
    pytest.param(domain, role, key, id=f"{domain}-{role}-{key}")
    for key in (*MEDICAL_KEYS, *LEGAL_KEYS)
    for domain in ((LEGAL,) if key in MEDICAL_KEYS else (MEDICAL,))
    for role in (OWNER, ASSIGNEE, COORDINATOR)
]


@pytest.mark.parametrize(("domain", "role", "key"), CROSS_DOMAIN_ROWS)
def test_it_answers_a_domains_urls_only_on_cases_of_that_domain(
    domain: str, role: str, key: str, build: Callable[[str, str], World], login: Callable[..., Client]
) -> None:
    # Being on a case is not being its doctor or its lawyer: the doctor records no mediation (nor
    # bills the legal-aid fund), the lawyer writes no consultation note, a worker books no home visit.
    world = build(domain, key)
    client = login(world.cast[role])
    before = _snapshot()
    response = client.post(_url(key, world, world.case.reference), _data(key, world))
    missing = client.post(_url(key, world, _missing_reference(world.case)), _data(key, world))

    assert response.status_code == missing.status_code == 404
    assert response.content == missing.content
    assert _snapshot() == before


@pytest.fixture
def bobs_case(bob: User, respiratory: Skill, doctor: Professional) -> Case:
    case, _problems = medical_services.medical_case_submit(
        resident=bob, skill=respiratory, complaint="胸闷三天。", since_when="三天", patient_age=40,
        patient_sex="male", health_consent=True,
    )
    return case


def test_it_gives_no_document_of_another_case_through_ones_own_case(
    build: Callable[[str, str], World], bobs_case: Case, bob: User, login: Callable[..., Client]
) -> None:
    world = build(MEDICAL, "document_download")
    client = login(bob)
    through_own = client.get(reverse("document_download", args=[bobs_case.reference, world.document.pk]))
    missing = client.get(reverse("document_download", args=[_missing_reference(world.case), world.document.pk]))

    assert through_own.status_code == missing.status_code == 404
    assert through_own.content == missing.content
    assert not CaseEvent.objects.filter(verb=Verb.DOCUMENT_VIEWED).exists()


def test_it_changes_no_visit_of_another_case_through_ones_own_case(
    build: Callable[[str, str], World], bobs_case: Case, bob: User, login: Callable[..., Client]
) -> None:
    world = build(MEDICAL, "visit_update:cancelled")
    assert world.visit is not None
    before = _snapshot()
    response = login(bob).post(reverse("medical:visit_update", args=[bobs_case.reference, world.visit.pk, "cancelled"]))

    assert response.status_code == 404
    assert _snapshot() == before


def _normalised(response: Any, reference: str) -> str:
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return text.replace(reference, "REFERENCE")


def test_it_answers_tracking_with_a_wrong_phone_as_for_a_missing_case(
    build: Callable[[str, str], World], alice: User, login: Callable[..., Client]
) -> None:
    world = build(MEDICAL, "track")
    wrong_digits = "0000" if alice.phone[-4:] != "0000" else "1111"
    missing_reference = _missing_reference(world.case)
    client = login(None)
    wrong = client.post(reverse("track"), {"reference": world.case.reference, "phone_last4": wrong_digits})
    missing = client.post(reverse("track"), {"reference": missing_reference, "phone_last4": wrong_digits})

    assert wrong.status_code == missing.status_code == 200
    assert wrong.context["not_found"] and missing.context["not_found"]
    assert _normalised(wrong, world.case.reference) == _normalised(missing, missing_reference)
    _assert_reveals_nothing(wrong, [*world.secrets, world.case.get_status_display()])


def test_it_shows_public_figures_without_any_case(
    build: Callable[[str, str], World], login: Callable[..., Client]
) -> None:
    world = build(LEGAL, "figures")
    response = login(None).get(reverse("figures"))

    assert response.status_code == 200
    assert response.context["figures"].disputes == 1  # the case is counted ...
    _assert_reveals_nothing(response, [*world.secrets, world.case.reference])  # ... but never shown


def test_it_says_nothing_about_an_unknown_verification_code(
    build: Callable[[str, str], World], login: Callable[..., Client]
) -> None:
    world = build(MEDICAL, "verify_document")
    response = login(None).get(reverse("verify_document", args=["not-a-real-code"]))

    assert response.status_code == 404
    assert response.context["document"] is None
    _assert_reveals_nothing(response, [*world.secrets, world.case.reference])

"""Who may call what: every URL pattern of consult/api/urls.py, every method, for every member of
the cast, with real credentials (a token from POST /auth/token/, or a web session with its CSRF
token). A refused call answers with the one error shape and changes nothing.

A case someone may not see is as absent as a missing one (404); a call refused to someone who sees
the case, for who they are, is a 403 with the reason, and one refused for the state things are in
(an off-duty professional claiming) a 409; anonymous is 401.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, reverse
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

from consult import services
from consult.api import urls as api_urls
from consult.models import Case, Document, DocumentKind, Message, Professional, Rating, Status, User
from legal.models import MediationOutcome
from medical.models import ConsultationNote
from privacy import services as privacy_services
from privacy.models import ErasureRequest
from tests.api.conftest import (
    API,
    LEGAL_BODY,
    MEDICAL_BODY,
    NOTE_BODY,
    ROLES,
    Cast,
    assert_error_shape,
    snapshot,
    submit_plain,
    token_client,
    token_for,
    write_note,
)
from tests.conftest import PASSWORD, recovery_code, second_factor_fields
from tests.consult import audio_corpus as audio
from tests.consult import files_corpus as corpus

OWNER, OTHER_RESIDENT, ASSIGNEE, OTHER_PROFESSIONAL, OTHER_KIND, COORDINATOR, ANONYMOUS = ROLES
# Marked, not only reached through getfixturevalue("case"): a run whose first database test is
# one of these (this file alone, or a -k selection) otherwise ran on var/db.sqlite3, the
# developer's database, instead of the test database.
pytestmark = pytest.mark.django_db
# The catch-all answers every method the same; these are the ones the API uses.
NOT_FOUND_METHODS = ("GET", "POST", "PUT")


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int, **by_role: int) -> dict[str, int]:
    return {**everyone(status), ANONYMOUS: 401, **by_role}


def on_the_case(owner: int, assignee: int, coordinator: int) -> dict[str, int]:
    """Those who see the case get `owner`/`assignee`/`coordinator`; outsiders the 404 of a missing case."""
    return signed_in(404, owner=owner, assignee=assignee, coordinator=coordinator)


@dataclass(frozen=True)
class Row:
    name: str  # the URL name in consult/api/urls.py
    method: str
    expect: dict[str, int]
    domain: str = "medical"
    # What the case has been through before the call: assigned (as submitted), active, noted,
    # resolved, closed; with_document (Alice uploaded a file); waiting (Bob's case waits in line).
    state: str = "assigned"
    body: Callable[[Case, Cast], Any] | None = field(default=None, compare=False)
    multipart: bool = False


def _upload(case: Case, cast: Cast) -> dict[str, Any]:
    report = SimpleUploadedFile("报告.pdf", corpus.pdf(title="API"), content_type="application/pdf")
    return {"file": report, "kind": "exam_report"}


def _voice(case: Case, cast: Cast) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("voice.ogg", audio.ogg_opus(), content_type="audio/ogg"), "client_id": "v-1"}


ROWS = [
    Row("schema", "GET", everyone(200)),
    Row("docs", "GET", everyone(200)),
    Row("redoc", "GET", everyone(200)),
    # Everyone logs in with their own phone and password; anonymous tries Alice's with a wrong one.
    Row("login", "POST", {**everyone(200), ANONYMOUS: 400}),
    Row("logout", "POST", signed_in(204)),
    Row("logout-all", "POST", signed_in(204)),
    # Phone codes (tests/accounts/test_api.py has the flows): anyone may ask for a sign-up code;
    # a code that was never sent is refused to everyone (the token is not what the code proves):
    # well formed, but it grants nothing (403).
    Row("code", "POST", everyone(202), body=lambda case, cast: {"phone": "13900009999", "purpose": "signup"}),
    Row("code-login", "POST", everyone(403), body=lambda case, cast: {"phone": cast.owner.phone, "code": "123456"}),
    Row("signup", "POST", everyone(403),
        body=lambda case, cast: {"name": "赵大妈", "phone": "13900009999", "code": "123456"}),
    Row("password-reset", "POST", everyone(403),
        body=lambda case, cast: {"phone": cast.owner.phone, "code": "123456", "password": "Qingshan-village-2026"}),
    Row("phone-change", "POST", signed_in(403), body=lambda case, cast: {"phone": "13900009999", "code": "123456"}),
    Row("services", "GET", everyone(200)),
    Row("track", "POST", everyone(200),
        body=lambda case, cast: {"reference": case.reference, "phone_last4": cast.owner.phone[-4:]}),
    Row("figures", "GET", everyone(200)),
    Row("consent-text", "GET", everyone(200)),
    # A copy of one's own data: everyone signed in gets theirs (the owner's holds the case).
    Row("export", "GET", signed_in(200)),
    Row("erasure-requests", "GET", signed_in(403, coordinator=200)),
    Row("cases", "GET", signed_in(200)),
    Row("case-create-medical", "POST", signed_in(403, owner=201, other_resident=201),
        body=lambda case, cast: MEDICAL_BODY),
    Row("case-create-legal", "POST", signed_in(403, owner=201, other_resident=201), domain="legal",
        body=lambda case, cast: LEGAL_BODY),
    Row("case-detail", "GET", on_the_case(200, 200, 200)),
    # accept, decline, resolve belong to the professional: a resident or coordinator is not one.
    Row("case-accept", "POST", on_the_case(403, 200, 403)),
    Row("case-decline", "POST", on_the_case(403, 204, 403), body=lambda case, cast: {"reason": "不在我的专业范围"}),
    Row("case-resolve", "POST", on_the_case(403, 200, 403), state="noted"),
    Row("case-close", "POST", on_the_case(403, 200, 200), state="resolved"),
    Row("case-withdraw", "POST", on_the_case(200, 403, 403), body=lambda case, cast: {"reason": "已经好了"}),
    Row("case-note", "PUT", on_the_case(403, 200, 403), state="active", body=lambda case, cast: NOTE_BODY),
    Row("case-outcome", "PUT", on_the_case(403, 200, 403), domain="legal", state="active",
        body=lambda case, cast: {"result": "settled", "amount_agreed": "600", "payment_due": "2030-01-31"}),
    Row("case-rating", "POST", on_the_case(201, 403, 403), state="closed",
        body=lambda case, cast: {"score": 5, "comment": "很耐心"}),
    # Erasure: the resident asks (her open case is withdrawn with it); a coordinator of the
    # domain answers the waiting request. Anyone else on the case is refused for who they are: 403,
    # as every other role refusal in this table (it was a 400 until the schema fuzzing found it).
    Row("case-erasure", "POST", on_the_case(201, 403, 403), body=lambda case, cast: {"reason": "请删除"}),
    Row("case-erasure-decide", "POST", on_the_case(403, 403, 200), state="erasure_asked",
        body=lambda case, cast: {"decision": "refuse", "answer": "仲裁中，依法保留"}),
    Row("documents", "GET", on_the_case(200, 200, 200), state="with_document"),
    Row("documents", "POST", on_the_case(201, 201, 201), body=_upload, multipart=True),
    Row("document-download", "GET", on_the_case(200, 200, 200), state="with_document"),
    Row("messages", "GET", on_the_case(200, 200, 200), state="active"),
    Row("messages", "POST", on_the_case(201, 201, 201), state="active",
        body=lambda case, cast: {"client_id": "c-1", "body": "您好，我把报告传上来了。"}),
    Row("voice-message", "POST", on_the_case(201, 201, 201), state="active", body=_voice, multipart=True),
    Row("queue", "GET", signed_in(403, assignee=200, other_professional=200, other_kind=200)),
    # Bob's case waits: the assignee takes it; the other doctor is off duty (409: on duty, the same
    # call would take it); the lawyer has nothing.
    Row("queue-claim", "POST", signed_in(403, assignee=200, other_professional=409, other_kind=204), state="waiting"),
    Row("queue-on-duty", "POST", signed_in(403, assignee=200, other_professional=200, other_kind=200),
        body=lambda case, cast: {"on_duty": True}),
    # Any other address under /api/v1/ (here: a document id that is not a number).
    *[Row("not-found", method, everyone(404)) for method in NOT_FOUND_METHODS],
]

MATRIX = [
    pytest.param(row, role, auth, id=f"{auth}-{row.method}-{row.name}-{role}")
    for auth in ("token", "session")
    for row in ROWS
    for role in ROLES
]


# --- building the world a row needs ---------------------------------------------------------


@dataclass
class World:
    case: Case
    cast: Cast
    document: Document | None = None
    waiting: Case | None = None


def _professional(user: User) -> Professional:
    return Professional.objects.get(user=user)


def prepare(row: Row, request: pytest.FixtureRequest) -> World:
    if row.domain == "legal":
        case, cast = request.getfixturevalue("legal_case"), request.getfixturevalue("legal_cast")
    else:
        case, cast = request.getfixturevalue("case"), request.getfixturevalue("medical_cast")
    world = World(case=case, cast=cast)
    assignee = _professional(cast.assignee)
    if row.state in ("active", "noted", "resolved", "closed"):
        services.case_accept(case=case, professional=assignee)
    if row.state in ("noted", "resolved", "closed"):
        write_note(case, assignee)
    if row.state in ("resolved", "closed"):
        services.case_resolve(case=case, professional=assignee)
    if row.state == "closed":
        services.case_close(case=case, user=cast.assignee)
    if row.state == "with_document":
        report = SimpleUploadedFile("检查报告.pdf", corpus.pdf())
        world.document, _new = services.document_add(
            case=case, uploader=cast.owner, upload=report, name="检查报告.pdf", kind="exam_report"
        )
    if row.state == "erasure_asked":
        privacy_services.erasure_request(case=case, resident=cast.owner)
    if row.state == "waiting":
        services.professional_set_on_duty(professional=assignee, on_duty=False)
        world.waiting = submit_plain(cast.other_resident, case.skill)
        assert world.waiting.status == Status.WAITING
        # Back on duty by the flag: through the service the waiting case would be handed to them.
        Professional.objects.filter(pk=assignee.pk).update(on_duty=True)
    case.refresh_from_db()
    return world


def url_of(row: Row, world: World) -> str:
    if row.name == "not-found":
        return f"{API}cases/{world.case.reference}/documents/not-a-number/"
    if row.name == "consent-text":
        return reverse(f"api:{row.name}", args=["health"])
    if row.name == "document-download":
        assert world.document is not None
        return reverse(f"api:{row.name}", args=[world.case.reference, world.document.pk])
    pattern = next(p for p in api_urls.urlpatterns if isinstance(p, URLPattern) and p.name == row.name)
    if "<str:reference>" in str(pattern.pattern):
        return reverse(f"api:{row.name}", args=[world.case.reference])
    return reverse(f"api:{row.name}")


def session_client(user: User | None) -> tuple[APIClient, str]:
    """A browser's session: logged in through the login page, with the CSRF token it was given."""
    client = APIClient(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.get(reverse("login"))
    csrf = client.cookies["csrftoken"].value
    if user is not None:
        response = client.post(
            reverse("login"), {"username": user.phone, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
        )
        assert response.status_code == 302, "the login page did not log in"
        csrf = client.cookies["csrftoken"].value  # rotated on login
        if second_factor_fields(user):  # staff: then the code page
            code = {"code": recovery_code(user), "csrfmiddlewaretoken": csrf}
            assert client.post(reverse("staff:verify"), code).status_code == 302, "the code page did not pass"
    return client, csrf


def send(client: APIClient, row: Row, url: str, body: Any, **extra: Any) -> Any:
    if row.method == "GET":
        return client.get(url, **extra)
    fmt = "multipart" if row.multipart else "json"
    call = client.put if row.method == "PUT" else client.post
    return call(url, body if body is not None else {}, format=fmt, **extra)


# --- what a successful call did ---------------------------------------------------------------


def check_success(row: Row, role: str, world: World, response: Any, client: APIClient) -> None:
    """The allowed call did what it says, for the one who made it."""
    case, cast = world.case, world.cast
    user = cast.user(role)
    case.refresh_from_db()
    key = (row.method, row.name)
    if key == ("POST", "login"):
        assert user is not None
        token = response.json()["token"]
        assert response.json()["user"]["phone"] == user.phone
        assert token_client(token).get(f"{API}cases/").status_code == 200
    elif key == ("POST", "code"):
        assert response.json()["sent_to"] == "139****9999"
    elif key in (("POST", "logout"), ("POST", "logout-all")):
        assert client.get(f"{API}cases/").status_code == 401
    elif key == ("GET", "cases"):
        listed = [c["reference"] for c in response.json()]
        assert (case.reference in listed) == (role in (OWNER, ASSIGNEE, COORDINATOR))
    elif key in (("POST", "case-create-medical"), ("POST", "case-create-legal")):
        created = Case.objects.get(reference=response.json()["reference"])
        assert created.resident == user
        assert created.kind == row.domain
    elif key == ("GET", "case-detail"):
        assert response.json()["reference"] == case.reference
    elif key == ("POST", "case-accept"):
        assert case.status == Status.ACTIVE
    elif key == ("POST", "case-decline"):
        assert case.assignee is None or case.assignee.user != user
    elif key == ("POST", "case-resolve"):
        assert case.status == Status.RESOLVED
    elif key == ("POST", "case-close"):
        assert case.status == Status.CLOSED
    elif key == ("POST", "case-withdraw"):
        assert case.status == Status.WITHDRAWN
    elif key == ("PUT", "case-note"):
        assert ConsultationNote.objects.get(case=case).advice == NOTE_BODY["advice"]
    elif key == ("PUT", "case-outcome"):
        assert MediationOutcome.objects.get(case=case).result == "settled"
    elif key == ("POST", "case-rating"):
        assert Rating.objects.get(case=case).score == 5
    elif key == ("GET", "documents"):
        assert world.document is not None
        assert [d["id"] for d in response.json()] == [world.document.pk]
    elif key == ("POST", "documents"):
        assert Document.objects.get(pk=response.json()["id"]).uploader == user
    elif key == ("POST", "voice-message"):
        sent = Message.objects.get(case=case, seq=response.json()["seq"])
        assert sent.sender == user and sent.document is not None and sent.document.kind == DocumentKind.VOICE
    elif key == ("GET", "document-download"):
        assert b"".join(response.streaming_content).startswith(b"%PDF")
    elif key == ("GET", "consent-text"):
        assert response.json()["purpose"] == "health" and response.json()["agree"]
    elif key == ("GET", "export"):
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        data = json.loads(archive.read("data.json"))
        assert data["account"]["phone"] == user.phone  # type: ignore[union-attr]
        assert (case.reference in [c["reference"] for c in data["cases"]]) == (role == OWNER)
    elif key == ("GET", "erasure-requests"):
        assert [r["case"] for r in response.json()] == []  # nothing asked in this world
    elif key == ("POST", "case-erasure"):
        assert case.status == Status.WITHDRAWN
        assert ErasureRequest.objects.get(case=case).requested_by == user
    elif key == ("POST", "case-erasure-decide"):
        assert ErasureRequest.objects.get(case=case).decided_by == user
    elif key == ("GET", "messages"):
        assert isinstance(response.json(), list)
    elif key == ("POST", "messages"):
        assert Message.objects.get(case=case, client_id="c-1").sender == user
    elif key == ("GET", "queue"):
        assert response.json()["capacity"] == _professional(user).capacity  # type: ignore[arg-type]
    elif key == ("POST", "queue-claim"):
        assert world.waiting is not None
        world.waiting.refresh_from_db()
        if response.status_code == 200:
            assert response.json()["reference"] == world.waiting.reference
            assert world.waiting.assignee is not None and world.waiting.assignee.user == user
        else:
            assert world.waiting.status == Status.WAITING
    elif key == ("POST", "queue-on-duty"):
        assert _professional(user).on_duty is True  # type: ignore[arg-type]


@pytest.mark.parametrize(("row", "role", "auth"), MATRIX)
def test_it_gives_each_role_exactly_its_access_to_each_endpoint(
    row: Row, role: str, auth: str, request: pytest.FixtureRequest
) -> None:
    world = prepare(row, request)
    user = world.cast.user(role)
    if auth == "token":
        client, extra = token_client(token_for(user) if user is not None else None), {}
    else:
        client, csrf = session_client(user)
        extra = {"HTTP_X_CSRFTOKEN": csrf}
    url = url_of(row, world)
    if row.name == "login":
        who = user or world.cast.owner
        body: Any = {"phone": who.phone, "password": PASSWORD if user is not None else "not-the-password"}
        if user is not None:
            body.update(second_factor_fields(user))
    else:
        body = row.body(world.case, world.cast) if row.body else None
    before = snapshot()

    response = send(client, row, url, body, **extra)

    expected = row.expect[role]
    assert response.status_code == expected, getattr(response, "content", b"")[:500]
    if expected >= 400:
        assert_error_shape(response, expected)
        assert snapshot() == before
    else:
        check_success(row, role, world, response, client)


def test_it_covers_every_url_pattern_and_method_of_the_api() -> None:
    declared = set()
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        view_class = getattr(pattern.callback, "cls", None)
        if view_class is None:  # a plain view answers any method
            declared |= {(pattern.name, method) for method in NOT_FOUND_METHODS}
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                declared.add((pattern.name, method.upper()))
    covered = {(row.name, row.method) for row in ROWS}
    assert covered == declared
    assert all(set(row.expect) == set(ROLES) for row in ROWS)


# --- sessions and CSRF -----------------------------------------------------------------------

# Login issues a token and sets no session; the catch-all changes nothing: neither needs CSRF. Nor
# do the code log-in, sign-up and reset (they take no session, as login); the number change does
# (tests/accounts/test_api.py, where a code can be sent first).
UNSAFE = [
    row for row in ROWS
    if row.method != "GET"
    and row.name not in ("login", "not-found", "code-login", "signup", "password-reset", "phone-change")
]


def _first_allowed(row: Row) -> str:
    return next(role for role in ROLES if role != ANONYMOUS and row.expect[role] < 400)


@pytest.mark.parametrize("row", UNSAFE, ids=[f"{r.method}-{r.name}" for r in UNSAFE])
def test_it_refuses_a_session_call_without_the_csrf_token_and_changes_nothing(
    row: Row, request: pytest.FixtureRequest
) -> None:
    world = prepare(row, request)
    client, _csrf = session_client(world.cast.user(_first_allowed(row)))
    body = row.body(world.case, world.cast) if row.body else None
    before = snapshot()

    response = send(client, row, url_of(row, world), body)

    error = assert_error_shape(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert snapshot() == before


def test_it_accepts_a_session_call_with_the_csrf_token_and_refuses_a_wrong_one(
    case: Case, alice: User
) -> None:
    client, csrf = session_client(alice)
    url = reverse("api:case-withdraw", args=[case.reference])

    wrong = client.post(url, {}, format="json", HTTP_X_CSRFTOKEN="x" * len(csrf))
    case.refresh_from_db()
    assert_error_shape(wrong, 403, "permission_denied")
    assert case.status == Status.ASSIGNED

    right = client.post(url, {}, format="json", HTTP_X_CSRFTOKEN=csrf)
    case.refresh_from_db()
    assert right.status_code == 200
    assert case.status == Status.WITHDRAWN


def test_it_ends_the_session_on_logout_through_the_api(case: Case, alice: User) -> None:
    client, csrf = session_client(alice)
    assert client.get(f"{API}cases/").status_code == 200

    assert client.post(f"{API}auth/logout/", {}, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 204

    assert_error_shape(client.get(f"{API}cases/"), 401, "not_authenticated")


# --- tokens ---------------------------------------------------------------------------------


def test_it_revokes_the_token_on_logout_and_only_that_token(case: Case, alice: User) -> None:
    phone_token, tablet_token = token_for(alice), token_for(alice)
    phone, tablet = token_client(phone_token), token_client(tablet_token)
    assert phone.get(f"{API}cases/{case.reference}/").status_code == 200

    assert phone.post(f"{API}auth/logout/").status_code == 204

    assert_error_shape(phone.get(f"{API}cases/{case.reference}/"), 401)
    assert AuthToken.objects.filter(user=alice).count() == 1
    assert tablet.get(f"{API}cases/{case.reference}/").status_code == 200


def test_it_stores_tokens_hashed_never_as_issued(alice: User) -> None:
    token = token_for(alice)

    stored = AuthToken.objects.get(user=alice)
    assert stored.digest != token
    assert token not in stored.digest
    # Only the short lookup prefix is kept in clear; the rest is only in the digest.
    assert stored.token_key == token[: CONSTANTS.TOKEN_KEY_LENGTH]
    assert len(token) > CONSTANTS.TOKEN_KEY_LENGTH
    assert stored.digest == hash_token(token)


def test_it_refuses_a_made_up_token_and_a_token_with_one_character_changed(case: Case, alice: User) -> None:
    token = token_for(alice)
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")

    for bad in (altered, "0" * len(token)):
        assert_error_shape(token_client(bad).get(f"{API}cases/{case.reference}/"), 401, "authentication_failed")
    assert token_client(token).get(f"{API}cases/{case.reference}/").status_code == 200


def test_it_gives_no_token_for_a_wrong_password_and_says_so_in_the_error_shape(alice: User) -> None:
    response = APIClient().post(f"{API}auth/token/", {"phone": alice.phone, "password": "wrong"}, format="json")

    assert_error_shape(response, 400, "invalid_login")
    assert not AuthToken.objects.exists()


def test_it_logs_in_with_the_phone_written_the_way_people_write_it(alice: User) -> None:
    phone = f"+86 {alice.phone[:3]}-{alice.phone[3:7]}-{alice.phone[7:]}"
    response = APIClient().post(f"{API}auth/token/", {"phone": phone, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert AuthToken.objects.get().user == alice


# --- each domain's own records -----------------------------------------------------------------


def test_it_refuses_a_note_on_a_labour_dispute_and_an_outcome_on_a_consultation(
    case: Case, legal_case: Case, doctor: Professional, lawyer: Professional, api: Callable[..., APIClient]
) -> None:
    services.case_accept(case=case, professional=doctor)
    services.case_accept(case=legal_case, professional=lawyer)
    as_lawyer, as_doctor = api(lawyer.user), api(doctor.user)
    before = snapshot()

    note = as_lawyer.put(f"{API}cases/{legal_case.reference}/note/", NOTE_BODY, format="json")
    outcome = as_doctor.put(f"{API}cases/{case.reference}/outcome/", {"result": "withdrawn"}, format="json")

    assert_error_shape(note, 404, "not_found")
    assert_error_shape(outcome, 404, "not_found")
    assert snapshot() == before
    assert not ConsultationNote.objects.exists()
    assert not MediationOutcome.objects.exists()

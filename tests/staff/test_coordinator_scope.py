"""Coordinators see the cases of their organisation's domains only: a hospital's coordinator no
labour dispute, the union's no medical record, on every page, the API, the sockets and the admin;
"not yours" answers exactly as "missing". Platform-wide coordinators see both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from consult import services
from consult.models import Case, Kind, Professional, Skill, User
from tests.conftest import PASSWORD, second_factor_fields
from tests.realtime.conftest import TIMEOUT, socket_for

API = "/api/v1/"


@pytest.fixture
def hospital_coordinator(db: Any) -> User:
    return services.coordinator_create(phone="13600000011", name="吴协调", password=PASSWORD, domains=[Kind.MEDICAL])


@pytest.fixture
def union_coordinator(db: Any) -> User:
    return services.coordinator_create(phone="13600000012", name="郑协调", password=PASSWORD, domains=[Kind.LEGAL])


@pytest.fixture
def platform_coordinator(db: Any) -> User:
    return services.coordinator_create(phone="13600000013", name="冯协调", password=PASSWORD, platform_wide=True)


@pytest.fixture
def dispute(alice: User, sick_pay: Skill, lawyer: Professional) -> Case:
    """Alice's labour dispute, assigned to the lawyer."""
    return services.case_submit(resident=alice, skill=sick_pay, description="病假工资少发了。")


def token_client(user: User) -> APIClient:
    response = APIClient().post(
        f"{API}auth/token/", {"phone": user.phone, "password": PASSWORD, **second_factor_fields(user)}, format="json"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def pages(reference: str) -> list[str]:
    return [reverse("case_detail", args=[reference]), reverse("chat_history", args=[reference])]


@pytest.mark.parametrize(("who", "theirs", "not_theirs"), [
    ("hospital_coordinator", "case", "dispute"),
    ("union_coordinator", "dispute", "case"),
])
def test_it_answers_a_coordinator_a_case_of_another_domain_as_a_missing_one(
    who: str, theirs: str, not_theirs: str, request: pytest.FixtureRequest, login: Callable[..., Client],
) -> None:
    coordinator = request.getfixturevalue(who)
    own: Case = request.getfixturevalue(theirs)
    other: Case = request.getfixturevalue(not_theirs)
    client = login(coordinator)

    assert client.get(reverse("case_detail", args=[own.reference])).status_code == 200
    for page, missing in zip(pages(other.reference), pages("ZZZZZZZZ"), strict=True):
        refused, absent = client.get(page), client.get(missing)
        assert refused.status_code == absent.status_code == 404
        assert refused.content.replace(other.reference.encode(), b"") == absent.content.replace(b"ZZZZZZZZ", b"")
    for action in ("reassign", "close"):
        response = client.post(reverse("case_action", args=[other.reference, action]), {"professional": 1})
        assert response.status_code == 404
    assert client.post(reverse("summary_request", args=[other.reference])).status_code == 404

    api = token_client(coordinator)
    refused, absent = api.get(f"{API}cases/{other.reference}/"), api.get(f"{API}cases/ZZZZZZZZ/")
    assert refused.status_code == absent.status_code == 404 and refused.json() == absent.json()
    listed = {row["reference"] for row in api.get(f"{API}cases/").json()}
    assert own.reference in listed and other.reference not in listed


@pytest.mark.parametrize(("who", "kind"), [("hospital_coordinator", Kind.MEDICAL), ("union_coordinator", Kind.LEGAL)])
def test_it_shows_a_coordinator_only_the_services_and_open_cases_of_their_domain(
    who: str, kind: str, request: pytest.FixtureRequest, case: Case, dispute: Case, login: Callable[..., Client]
) -> None:
    page = login(request.getfixturevalue(who)).get(reverse("dashboard"))

    assert page.status_code == 200
    assert {row.skill.kind for row in page.context["rows"]} == {kind}
    assert [c.kind for c in page.context["open_cases"]] == [kind]


def test_it_shows_a_platform_wide_coordinator_both_domains_and_a_coordinator_without_one_nothing(
    case: Case, dispute: Case, platform_coordinator: User, login: Callable[..., Client]
) -> None:
    for reference in (case.reference, dispute.reference):
        assert login(platform_coordinator).get(reverse("case_detail", args=[reference])).status_code == 200
    nobody = services.coordinator_create(phone="13600000014", name="空协调", password=PASSWORD)
    assert login(nobody).get(reverse("case_detail", args=[case.reference])).status_code == 404
    assert list(login(nobody).get(reverse("dashboard")).context["open_cases"]) == []


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_it_refuses_a_coordinator_the_case_room_of_another_domain(
    dispute: Case, case: Case, hospital_coordinator: User
) -> None:
    from channels.db import database_sync_to_async

    def cookie() -> str:
        client = Client()
        client.force_login(hospital_coordinator)
        return f"sessionid={client.cookies['sessionid'].value}"

    session = await database_sync_to_async(cookie)()
    accepted = {}
    for label, reference in (("own", case.reference), ("other", dispute.reference)):
        socket = socket_for(f"/ws/cases/{reference}/", session)
        accepted[label], _ = await socket.connect(timeout=TIMEOUT)
        await socket.disconnect()

    assert accepted == {"own": True, "other": False}


def test_it_keeps_the_admin_of_another_domain_closed_to_a_coordinator(
    case: Case, dispute: Case, hospital_coordinator: User, login: Callable[..., Client]
) -> None:
    client = login(hospital_coordinator)

    listed = client.get("/admin/consult/case/").content.decode()
    assert case.reference in listed and dispute.reference not in listed
    assert client.get(reverse("admin:consult_case_change", args=[dispute.pk])).status_code in (302, 404)
    assert client.get("/admin/legal/").status_code in (403, 404)
    assert client.get("/admin/medical/").status_code == 200


def test_it_lists_on_the_dashboard_only_the_failed_notices_of_the_coordinators_domain(
    case: Case, dispute: Case, hospital_coordinator: User, login: Callable[..., Client]
) -> None:
    from notices.models import Notice, NoticeKind, NoticeStatus
    from notices.services import notify

    for of in (case, dispute):
        params = {"case": of.reference, "link": "x"}
        notice = notify(phone="13900000001", kind=NoticeKind.CASE_CLOSED, case=of, params=params)
        Notice.objects.filter(pk=notice.pk).update(status=NoticeStatus.FAILED, error=f"failed {of.reference}")

    page = login(hospital_coordinator).get(reverse("dashboard")).content.decode()

    assert f"failed {case.reference}" in page and dispute.reference not in page


# --- the report, the notices' and the failed jobs' admin ------------------------------------------


def test_it_counts_in_a_coordinators_report_only_the_cases_of_their_domain(
    case: Case, dispute: Case, hospital_coordinator: User, union_coordinator: User,
    platform_coordinator: User, login: Callable[..., Client],
) -> None:
    from consult import figures

    def report(user: User) -> figures.Figures:
        response = login(user, "en").get(reverse("report"))
        assert response.status_code == 200
        return response.context["figures"]

    hospital, union, platform = (report(u) for u in (hospital_coordinator, union_coordinator, platform_coordinator))

    assert (hospital.consultations, hospital.disputes, hospital.people_served) == (1, 0, 1)
    assert [row["skill"].kind for row in hospital.services] == [Kind.MEDICAL]
    assert (union.consultations, union.disputes) == (0, 1)
    assert (platform.consultations, platform.disputes) == (1, 1)
    csv = login(hospital_coordinator, "en").get(reverse("report_csv")).content.decode()
    assert dispute.skill.name_en not in csv and case.skill.name_en in csv


def test_it_offers_a_coordinators_report_filters_of_their_domain_only(
    case: Case, dispute: Case, hospital_coordinator: User, login: Callable[..., Client]
) -> None:
    client = login(hospital_coordinator, "en")

    page = client.get(reverse("report")).content.decode()
    assert case.skill.name_en in page and dispute.skill.name_en not in page
    assert dispute.assignee is not None and dispute.assignee.user.name not in page
    # The lawyer's cases are not counted by asking for them by hand either.
    filtered = client.get(reverse("report"), {"professional": dispute.assignee.pk})
    assert filtered.context["figures"].disputes == 0


def test_it_lists_in_the_notices_admin_only_the_coordinators_domain_and_the_caseless(
    case: Case, dispute: Case, hospital_coordinator: User, platform_coordinator: User, login: Callable[..., Client]
) -> None:
    from notices.models import Notice, NoticeKind
    from notices.services import notify

    notices = {
        of.reference: notify(phone="13900000001", kind=NoticeKind.CASE_CLOSED, case=of,
                             params={"case": of.reference, "link": "x"})
        for of in (case, dispute)
    }  # fmt: skip
    Notice.objects.filter(pk=notices[dispute.reference].pk).update(error="provider said no")
    code = notify(phone="13800000009", kind=NoticeKind.VERIFICATION_CODE, params={"code": "123456"})

    client = login(hospital_coordinator, "en")
    listed = client.get("/admin/notices/notice/").content.decode()
    assert f"/admin/notices/notice/{notices[case.reference].pk}/" in listed
    assert f"/admin/notices/notice/{code.pk}/" in listed
    assert f"/admin/notices/notice/{notices[dispute.reference].pk}/" not in listed
    other = client.get(reverse("admin:notices_notice_change", args=[notices[dispute.reference].pk]))
    assert other.status_code in (302, 404) and dispute.reference not in other.content.decode()
    everything = login(platform_coordinator, "en").get("/admin/notices/notice/").content.decode()
    assert f"/admin/notices/notice/{notices[dispute.reference].pk}/" in everything


def test_it_shows_a_coordinator_of_one_domain_no_failed_job_about_one_notice(
    case: Case, dispute: Case, hospital_coordinator: User, platform_coordinator: User, login: Callable[..., Client]
) -> None:
    from jobs.services import job_failure_record

    job_failure_record(task="consult.tasks.sweep_orphans", args="", error="storage down", attempts=3)
    job_failure_record(
        task="notices.tasks.deliver", args='{"args": [], "kwargs": {"notice_id": 7}}',
        error=f"SMS to 13800000001 about {dispute.reference} refused", attempts=5,
    )  # fmt: skip

    for path in ("/admin/jobs/jobfailure/", reverse("dashboard")):
        page = login(hospital_coordinator, "en").get(path).content.decode()
        assert "storage down" in page or "sweep_orphans" in page
        assert "notices.tasks.deliver" not in page and dispute.reference not in page
        everything = login(platform_coordinator, "en").get(path).content.decode()
        assert "notices.tasks.deliver" in everything

"""The queue feed at ws/queue/: professionals of a skill and coordinators are told to refresh when
the skill's queue changes; nobody else is, and residents and strangers are not let in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async

from consult import services
from consult.models import Priority, Professional, Skill, Status, User
from tests.realtime.conftest import QUEUE_PATH, Connect, Socket, frames_until_quiet, of_type

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cardiologist(professional_factory: Callable[..., Professional], cardiology: Skill) -> Professional:
    return professional_factory([cardiology], name="赵医生")


@pytest.fixture
def nobody_on_duty(doctor: Professional, other_doctor: Professional) -> None:
    """Respiratory cases wait in line: both respiratory doctors are off duty (set quietly)."""
    Professional.objects.filter(pk__in=[doctor.pk, other_doctor.pk]).update(on_duty=False)


async def refreshes(comm: Socket) -> list[int]:
    return [frame["skill_id"] for frame in of_type(await frames_until_quiet(comm), "refresh")]


async def test_it_tells_the_skills_professionals_and_coordinators_when_a_case_arrives(
    connect: Connect, bob: User, doctor: Professional, other_doctor: Professional, cardiologist: Professional,
    lawyer: Professional, coordinator: User, respiratory: Skill, nobody_on_duty: None,
) -> None:
    same_skill = [await connect(doctor.user, QUEUE_PATH), await connect(other_doctor.user, QUEUE_PATH)]
    dashboard = await connect(coordinator, QUEUE_PATH)
    other_skill = [await connect(cardiologist.user, QUEUE_PATH), await connect(lawyer.user, QUEUE_PATH)]
    for comm in (*same_skill, dashboard, *other_skill):
        assert comm.accepted

    case = await database_sync_to_async(services.case_submit)(
        resident=bob, skill=respiratory, description="咳嗽。", priority=Priority.NORMAL
    )
    assert case.status == Status.WAITING

    for comm in (*same_skill, dashboard):
        assert await refreshes(comm) == [respiratory.pk]
    for comm in other_skill:
        assert await frames_until_quiet(comm) == []


async def test_it_tells_the_skills_professionals_and_coordinators_when_a_case_is_taken(
    connect: Connect, bob: User, doctor: Professional, other_doctor: Professional, cardiologist: Professional,
    coordinator: User, respiratory: Skill, nobody_on_duty: None,
) -> None:
    await database_sync_to_async(services.case_submit)(
        resident=bob, skill=respiratory, description="咳嗽。", priority=Priority.NORMAL
    )
    await database_sync_to_async(Professional.objects.filter(pk=doctor.pk).update)(on_duty=True)
    colleague = await connect(other_doctor.user, QUEUE_PATH)
    dashboard = await connect(coordinator, QUEUE_PATH)
    other_skill = await connect(cardiologist.user, QUEUE_PATH)

    taken = await database_sync_to_async(services.case_claim_next)(professional=doctor)
    assert taken is not None and taken.status == Status.ACTIVE

    for comm in (colleague, dashboard):
        seen = await refreshes(comm)
        assert seen and set(seen) == {respiratory.pk}  # claimed and accepted: one refresh per step
    assert await frames_until_quiet(other_skill) == []


async def test_it_tells_nobody_of_a_change_in_another_skill(
    connect: Connect, bob: User, doctor: Professional, cardiologist: Professional, cardiology: Skill,
    coordinator: User,
) -> None:
    respiratory_doctor = await connect(doctor.user, QUEUE_PATH)
    dashboard = await connect(coordinator, QUEUE_PATH)
    await database_sync_to_async(services.case_submit)(
        resident=bob, skill=cardiology, description="胸闷。", priority=Priority.NORMAL
    )
    assert await frames_until_quiet(respiratory_doctor) == []
    assert await refreshes(dashboard) == [cardiology.pk]


@pytest.mark.parametrize("who", ["alice", "bob", "anonymous"])
async def test_it_refuses_residents_and_anonymous_visitors(
    connect: Connect, alice: User, bob: User, who: str
) -> None:
    user = {"alice": alice, "bob": bob, "anonymous": None}[who]
    comm = await connect(user, QUEUE_PATH)
    assert not comm.accepted


async def test_it_refuses_a_foreign_origin(connect: Connect, doctor: Professional) -> None:
    comm = await connect(doctor.user, QUEUE_PATH, origin="http://evil.example")
    assert not comm.accepted


async def test_it_answers_ping_and_refuses_anything_else_without_closing(
    connect: Connect, doctor: Professional
) -> None:
    comm = await connect(doctor.user, QUEUE_PATH)
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=2) == {"type": "pong"}
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from(timeout=2))["code"] == "unknown_type"
    await comm.send_to(bytes_data=b"\x00")
    assert (await comm.receive_json_from(timeout=2))["code"] == "unknown_type"
    await comm.send_to(text_data='{"type":"ping"}')
    assert await comm.receive_json_from(timeout=2) == {"type": "pong"}

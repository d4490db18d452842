"""The case room at ws/cases/<reference>/: who gets in, what each frame does, who hears what."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from consult import selectors, services
from consult.models import Case, Message, MessageKind, Priority, Professional, Skill, Status, User
from consult.services import messages as chat
from realtime import consumers
from realtime.models import Connection, ReadMark
from tests.conftest import PASSWORD
from tests.realtime.conftest import (
    TIMEOUT,
    Connect,
    closed_with,
    frames_until_quiet,
    hello,
    of_type,
    receive_until,
    room_path,
    say,
)

pytestmark = pytest.mark.django_db(transaction=True)


class FakeClock:
    """Stands in for `time` in the consumer and the limits, so throttles can be stepped past. Each
    clock starts at a time of its own (at the start of a minute, so the limits' fixed windows start
    with it): counts a test leaves in the cache are never another test's."""

    started = itertools.count()

    def __init__(self) -> None:
        self.now = 10.0**9 + 600.0 * next(self.started)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from consult import limits as counts
    from realtime import limits

    fake = FakeClock()
    for module in (consumers, limits, counts):
        monkeypatch.setattr(module, "time", fake)
    return fake


@pytest.fixture
def cast(
    alice: User, bob: User, doctor: Professional, other_doctor: Professional, lawyer: Professional,
    coordinator: User, case: Case,
) -> dict[str, User | None]:
    return {
        "alice": alice, "bob": bob, "doctor": doctor.user, "other_doctor": other_doctor.user,
        "lawyer": lawyer.user, "coordinator": coordinator, "anonymous": None,
    }


@database_sync_to_async
def stored(case: Case) -> list[tuple[str, int | None, str, str | None]]:
    """The case's chat as stored: (kind, sender, body, client id) in order."""
    return list(Message.objects.filter(case=case).order_by("seq").values_list("kind", "sender_id", "body", "client_id"))


@database_sync_to_async
def texts_stored(case: Case) -> list[str]:
    return list(Message.objects.filter(case=case, kind=MessageKind.TEXT).order_by("seq").values_list("body", flat=True))


@database_sync_to_async
def logged_in(user: User) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


# --- who gets in ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("who", ["alice", "doctor", "coordinator"])
async def test_it_lets_the_resident_the_assignee_and_coordinators_in(
    connect: Connect, cast: dict[str, User | None], case: Case, who: str
) -> None:
    comm = await connect(cast[who], room_path(case.reference))
    assert comm.accepted
    replayed, synced = await hello(comm)
    assert [m["seq"] for m in replayed] == [1]  # the "case assigned" status line
    assert synced["last_seq"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer", "anonymous"])
async def test_it_refuses_outsiders(connect: Connect, cast: dict[str, User | None], case: Case, who: str) -> None:
    comm = await connect(cast[who], room_path(case.reference))
    assert not comm.accepted
    assert await database_sync_to_async(Connection.objects.filter(case=case).count)() == 0


@pytest.mark.asyncio
async def test_it_refuses_a_case_that_does_not_exist(connect: Connect, alice: User, case: Case) -> None:
    comm = await connect(alice, room_path("ZZ-000000"))
    assert not comm.accepted


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example", "http://127.0.0.1.evil.example", "https://consult.example.org", None, "null", "",
        # The site's host, but another scheme or port: another origin (another program on the machine).
        "https://127.0.0.1", "http://127.0.0.1:8080", "http://127.0.0.1:80/page", "http://127.0.0.1:99999",
    ],
)
async def test_it_refuses_a_foreign_or_missing_origin_even_with_a_valid_session(
    connect: Connect, alice: User, case: Case, origin: str | None
) -> None:
    comm = await connect(alice, room_path(case.reference), origin=origin)
    assert not comm.accepted


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", ["http://127.0.0.1", "http://127.0.0.1:80", "https://127.0.0.1:8443"])
async def test_it_accepts_the_sites_own_origin_and_trusted_ones(
    connect: Connect, alice: User, case: Case, origin: str, settings: Any
) -> None:
    # A proxy ends TLS on 8443 and passes the socket on as plain ws: trusted as Django's CSRF does.
    settings.CSRF_TRUSTED_ORIGINS = ["https://127.0.0.1:8443"]
    comm = await connect(alice, room_path(case.reference), origin=origin)
    assert comm.accepted


# --- messages -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_acknowledges_a_message_and_broadcasts_it_to_everyone_in_the_room(
    connect: Connect, alice: User, bob: User, doctor: Professional, coordinator: User, case: Case,
    respiratory: Skill,
) -> None:
    bobs_case = await database_sync_to_async(services.case_submit)(
        resident=bob, skill=respiratory, description="头痛三天。", priority=Priority.NORMAL
    )
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    watching = await connect(coordinator, room_path(case.reference))
    elsewhere = await connect(bob, room_path(bobs_case.reference))
    for comm in (mine, theirs, watching, elsewhere):
        await hello(comm)
        await frames_until_quiet(comm)

    await mine.send_json_to({"type": "message", "client_id": "c-1", "body": "  医生您好  "})

    to_sender = await frames_until_quiet(mine)
    # The ack and the room's copy of the message travel separately: either may come first.
    assert {"type": "ack", "client_id": "c-1", "seq": 2} in to_sender
    to_sender = [frame for frame in to_sender if frame["type"] != "ack"]
    expected = {
        "seq": 2, "kind": "text", "sender_id": alice.pk, "sender": "王秀英", "body": "医生您好",
        "client_id": "c-1", "detail": {}, "document": None,
    }
    for frames in (to_sender, await frames_until_quiet(theirs), await frames_until_quiet(watching)):
        assert [f["type"] for f in frames] == ["message"]
        message = dict(frames[0]["message"])
        assert message.pop("created_at")
        assert message == expected
    assert await frames_until_quiet(elsewhere) == []
    assert await stored(case) == [
        ("system", None, "", None),
        ("text", alice.pk, "医生您好", "c-1"),
    ]


@pytest.mark.asyncio
async def test_it_replays_everything_after_last_seq_when_a_client_comes_back(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    first = await connect(alice, room_path(case.reference))
    await hello(first)
    assert (await say(first, "第一条", "a-1"))["seq"] == 2
    await first.disconnect()

    theirs = await connect(doctor.user, room_path(case.reference))
    await hello(theirs)
    await say(theirs, "您在吗？", "d-1")
    await say(theirs, "请上传检查报告。", "d-2")

    again = await connect(alice, room_path(case.reference))
    replayed, synced = await hello(again, last_seq=2)
    assert [(m["seq"], m["body"], m["sender_id"]) for m in replayed] == [
        (3, "您在吗？", doctor.user.pk),
        (4, "请上传检查报告。", doctor.user.pk),
    ]
    assert synced["last_seq"] == 4

    everything, synced = await hello(again, last_seq=0)
    assert [m["seq"] for m in everything] == [1, 2, 3, 4]
    assert synced["last_seq"] == 4
    up_to_date, synced = await hello(again, last_seq=4)
    assert up_to_date == []
    assert synced["last_seq"] == 4


@pytest.mark.asyncio
async def test_it_stores_a_repeated_client_id_once_and_acknowledges_it_again_with_the_same_seq(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
        await frames_until_quiet(comm)

    first = await say(mine, "发烧38度", "same-id")
    again = await say(mine, "发烧38度", "same-id")

    assert first == again == {"type": "ack", "client_id": "same-id", "seq": 2}
    assert await texts_stored(case) == ["发烧38度"]
    heard = of_type(await frames_until_quiet(theirs), "message")
    assert [m["message"]["seq"] for m in heard] == [2]


BAD_FRAMES: list[tuple[str, Any, str]] = [
    ("invalid JSON", "{not json", "bad_json"),
    ("a JSON list", "[1, 2]", "bad_frame"),
    ("a JSON string", '"message"', "bad_frame"),
    ("a JSON number", "42", "bad_frame"),
    ("a binary frame", b"\x00\x01binary", "bad_frame"),
    ("an unknown type", {"type": "dance"}, "unknown_type"),
    ("no type at all", {"body": "hi", "client_id": "x"}, "unknown_type"),
    ("no client_id", {"type": "message", "body": "hi"}, "missing_field"),
    ("an empty client_id", {"type": "message", "body": "hi", "client_id": ""}, "missing_field"),
    ("a number as client_id", {"type": "message", "body": "hi", "client_id": 7}, "missing_field"),
    ("a client_id over 64 characters", {"type": "message", "body": "hi", "client_id": "x" * 65}, "client_id"),
    ("a number as body", {"type": "message", "body": 5, "client_id": "bad-1"}, "bad_field"),
    ("null as body", {"type": "message", "body": None, "client_id": "bad-1"}, "bad_field"),
    ("a string as document_id", {"type": "message", "body": "hi", "client_id": "bad-1", "document_id": "3"},
     "bad_field"),
    ("a document that is not on the case",
     {"type": "message", "body": "附件", "client_id": "bad-1", "document_id": 999_999}, "document"),
    ("a body over 4000 characters", {"type": "message", "body": "x" * 4001, "client_id": "bad-1"}, "too_long"),
    # json.dumps writes each of these as \\uXXXX: a 24,000-character frame, still judged by its body.
    ("a Chinese body over 4000 characters", {"type": "message", "body": "长" * 4001, "client_id": "bad-1"},
     "too_long"),
    ("an empty body", {"type": "message", "body": "", "client_id": "bad-1"}, "empty"),
    ("a blank body", {"type": "message", "body": " \n\t ", "client_id": "bad-1"}, "empty"),
    ("a frame over the frame limit",
     {"type": "message", "body": "x" * (consumers.MAX_FRAME_CHARS + 1), "client_id": "big"}, "too_long"),
    ("a text last_seq", {"type": "hello", "last_seq": "5"}, "bad_field"),
    ("a negative read mark", {"type": "read", "seq": -1}, "bad_field"),
    ("a boolean read mark", {"type": "read", "seq": True}, "bad_field"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("frame", "code"), [(f, c) for _, f, c in BAD_FRAMES], ids=[n for n, _, _ in BAD_FRAMES])
async def test_it_answers_a_bad_frame_with_an_error_and_keeps_the_socket_open(
    connect: Connect, alice: User, doctor: Professional, case: Case, frame: Any, code: str
) -> None:
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
        await frames_until_quiet(comm)

    if isinstance(frame, bytes):
        await mine.send_to(bytes_data=frame)
    elif isinstance(frame, str):
        await mine.send_to(text_data=frame)
    else:
        await mine.send_json_to(frame)

    error = await mine.receive_json_from(timeout=TIMEOUT)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    if isinstance(frame, dict) and frame.get("client_id") == "bad-1":
        # The client can tell which of its pending messages was refused.
        assert error["client_id"] == "bad-1"
    assert await frames_until_quiet(theirs) == []  # nothing reached the other side

    assert (await say(mine, "还在吗？", "good-1"))["seq"] == 2  # the socket is still open
    assert await texts_stored(case) == ["还在吗？"]


@pytest.mark.asyncio
async def test_it_accepts_a_body_of_exactly_4000_characters_however_it_is_encoded(
    connect: Connect, alice: User, case: Case
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    await say(mine, "长" * 4000, "escaped")  # json.dumps: every character as \\uXXXX
    await mine.send_to(text_data=json.dumps({"type": "message", "client_id": "emoji", "body": "😀" * 4000}))
    assert (await receive_until(mine, "ack"))["client_id"] == "emoji"
    await mine.send_to(
        text_data=json.dumps({"type": "message", "client_id": "raw", "body": "短" * 4000}, ensure_ascii=False)
    )
    assert (await receive_until(mine, "ack"))["client_id"] == "raw"
    assert await texts_stored(case) == ["长" * 4000, "😀" * 4000, "短" * 4000]


@pytest.mark.asyncio
async def test_it_refuses_the_21st_message_within_10_seconds_and_stores_nothing_of_it(
    connect: Connect, alice: User, case: Case, clock: FakeClock
) -> None:
    mine = await connect(alice, room_path(case.reference))
    await hello(mine)
    for n in range(20):
        await say(mine, f"第{n}条", f"burst-{n}")
        clock.now += 0.4  # 20 messages in 8 seconds

    clock.now += 1.9  # 9.9 seconds after the first one
    await mine.send_json_to({"type": "message", "client_id": "burst-20", "body": "第20条"})
    refused = await receive_until(mine, "error")
    assert refused["code"] == "rate_limited"
    assert refused["client_id"] == "burst-20"
    assert len(await texts_stored(case)) == 20

    clock.now += 0.2  # a new 10-second window: one more is allowed
    await say(mine, "第20条", "burst-20")
    assert len(await texts_stored(case)) == 21


# --- typing, receipts, presence -----------------------------------------------------------


@pytest.mark.asyncio
async def test_it_sends_typing_to_the_others_not_to_the_typist_and_throttles_it(
    connect: Connect, alice: User, doctor: Professional, case: Case, clock: FakeClock
) -> None:
    mine = await connect(alice, room_path(case.reference))
    my_other_tab = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, my_other_tab, theirs):
        await frames_until_quiet(comm)

    await mine.send_json_to({"type": "typing"})
    assert await frames_until_quiet(theirs) == [{"type": "typing", "user_id": alice.pk, "name": "王秀英"}]
    assert await frames_until_quiet(mine) == []
    assert await frames_until_quiet(my_other_tab) == []

    clock.now += 1.5
    await mine.send_json_to({"type": "typing"})
    assert await frames_until_quiet(theirs) == []  # throttled: once every 2 seconds

    clock.now += 0.6
    await mine.send_json_to({"type": "typing"})
    assert of_type(await frames_until_quiet(theirs), "typing") == [
        {"type": "typing", "user_id": alice.pk, "name": "王秀英"}
    ]


@pytest.mark.asyncio
async def test_it_stores_and_broadcasts_read_marks_that_never_go_backwards(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
    await say(mine, "一", "r-1")
    await say(mine, "二", "r-2")
    for comm in (mine, theirs):
        await frames_until_quiet(comm)

    def mark() -> int:
        return ReadMark.objects.get(case=case, user=doctor.user).seq

    await theirs.send_json_to({"type": "read", "seq": 3})
    receipt = {"type": "read", "user_id": doctor.user.pk, "seq": 3}
    assert await frames_until_quiet(mine) == [receipt]
    assert await frames_until_quiet(theirs) == [receipt]
    assert await database_sync_to_async(mark)() == 3

    # Nothing new read (backwards, or the same again): no write and no broadcast.
    for seq in (2, 3):
        await theirs.send_json_to({"type": "read", "seq": seq})
        assert await frames_until_quiet(mine) == []
        assert await frames_until_quiet(theirs) == []
    assert await database_sync_to_async(mark)() == 3


@pytest.mark.asyncio
async def test_it_limits_every_frame_type_not_only_messages(
    connect: Connect, alice: User, doctor: Professional, case: Case, clock: FakeClock
) -> None:
    from django.conf import settings

    comm = await connect(alice, room_path(case.reference))
    await hello(comm)  # the first frame of the window
    for _ in range(settings.CHAT_FRAMES_PER_10S - 1):
        await comm.send_json_to({"type": "ping"})
        await receive_until(comm, "pong")
    for frame_type in ("ping", "read", "hello", "typing"):
        await comm.send_json_to({"type": frame_type, "seq": 1, "last_seq": 0})
        refused = await receive_until(comm, "error")
        assert refused["code"] == "rate_limited" and refused["answers"] == frame_type
        assert refused["retry"] is True and 0 < refused["retry_after"] <= 10
    await comm.send_json_to({"type": "message", "client_id": "over", "body": "太快"})
    refused = await receive_until(comm, "error")
    assert (refused["code"], refused["client_id"], refused["retry"]) == ("rate_limited", "over", True)
    assert not await database_sync_to_async(Message.objects.filter(client_id="over").exists)()


@pytest.mark.asyncio
async def test_it_counts_a_persons_messages_across_all_their_sockets(
    connect: Connect, alice: User, case: Case, clock: FakeClock
) -> None:
    phone, tablet = await connect(alice, room_path(case.reference)), await connect(alice, room_path(case.reference))
    for comm in (phone, tablet):
        await hello(comm)
    for n in range(10):
        await say(phone, f"手机{n}", f"phone-{n}")
        await say(tablet, f"平板{n}", f"tablet-{n}")
    for comm, client_id in ((phone, "phone-over"), (tablet, "tablet-over")):
        await comm.send_json_to({"type": "message", "client_id": client_id, "body": "太多了"})
        refused = await receive_until(comm, "error")
        assert (refused["code"], refused["client_id"], refused["retry"]) == ("rate_limited", client_id, True)
    assert len(await texts_stored(case)) == 20


@pytest.mark.asyncio
async def test_it_counts_messages_from_the_sockets_and_the_api_together(
    connect: Connect, alice: User, case: Case, clock: FakeClock, settings: Any
) -> None:
    from tests.api.conftest import API, token_client, token_for

    comm = await connect(alice, room_path(case.reference))
    await hello(comm)
    for n in range(settings.CHAT_MESSAGES_PER_10S):
        await say(comm, f"第{n}条", f"socket-{n}")

    def post_by_the_app() -> int:
        client = token_client(token_for(alice))
        url = f"{API}cases/{case.reference}/messages/"
        return int(client.post(url, {"client_id": "app-1", "body": "您好"}, format="json").status_code)

    assert await database_sync_to_async(post_by_the_app)() == 429
    assert len(await texts_stored(case)) == settings.CHAT_MESSAGES_PER_10S


@pytest.mark.asyncio
async def test_it_replays_at_most_a_page_a_hello_and_bounds_what_hellos_send_back(
    connect: Connect, alice: User, case: Case, clock: FakeClock, settings: Any
) -> None:
    for n in range(consumers.REPLAY_PAGE + 50):
        await database_sync_to_async(chat.message_post)(case=case, sender=alice, body=f"第{n}条", client_id=f"old-{n}")
    comm = await connect(alice, room_path(case.reference))
    replayed, synced = await hello(comm)
    assert len(replayed) == consumers.REPLAY_PAGE and synced["more"] is True and "online" not in synced
    replayed, synced = await hello(comm, last_seq=synced["last_seq"])
    assert 50 <= len(replayed) < consumers.REPLAY_PAGE and "more" not in synced and synced["online"]

    # A client asking for everything again and again (once 25 frames brought back 10,051).
    sent_back = consumers.REPLAY_PAGE + len(replayed)
    for _ in range(25):
        await comm.send_json_to({"type": "hello", "last_seq": 0})
        frame = await comm.receive_json_from(timeout=5)
        while frame["type"] not in ("synced", "error"):
            sent_back += frame["type"] == "message"
            frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == "error":
            break
    assert (frame["code"], frame["answers"], frame["retry"]) == ("rate_limited", "hello", True)
    assert 0 < frame["retry_after"] <= 60
    assert settings.CHAT_REPLAYED_PER_MINUTE <= sent_back <= settings.CHAT_REPLAYED_PER_MINUTE + consumers.REPLAY_PAGE
    assert await frames_until_quiet(comm) == []  # nothing comes back for the refused hello

    clock.now += 60  # a minute later, catching up works again
    assert len((await hello(comm, last_seq=synced["last_seq"] - 5))[0]) == 5


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [r"nul\u0000inside", r"lone \ud800 surrogate"])  # as JSON escapes
async def test_it_refuses_a_body_the_database_cannot_store_for_good_with_its_client_id(
    connect: Connect, alice: User, doctor: Professional, case: Case, body: str
) -> None:
    comm = await connect(alice, room_path(case.reference))
    await hello(comm)
    await comm.send_to(text_data='{"type": "message", "client_id": "poison", "body": "' + body + '"}')
    refused = await receive_until(comm, "error")
    assert refused["client_id"] == "poison" and refused["code"] == "bad_characters"
    assert refused["retry"] is False and "retry_after" not in refused
    assert "无法发送" in refused["message"]
    # The socket still works.
    assert (await say(comm, "好的", "after-poison"))["seq"] > 0


@pytest.mark.asyncio
async def test_it_tells_a_sender_to_retry_a_message_that_failed_for_a_passing_fault(
    connect: Connect, alice: User, doctor: Professional, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from consult.services import messages as chat

    comm = await connect(alice, room_path(case.reference))
    await hello(comm)

    def down(**kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(chat, "message_post", down)
    await comm.send_json_to({"type": "message", "client_id": "later", "body": "稍后"})
    refused = await receive_until(comm, "error")
    assert (refused["code"], refused["client_id"], refused["answers"]) == ("unavailable", "later", "message")
    assert refused["retry"] is True and refused["retry_after"] > 0

    def unreadable(**kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(chat, "messages_after", unreadable)
    await comm.send_json_to({"type": "hello", "last_seq": 0})
    refused = await receive_until(comm, "error")
    assert (refused["code"], refused["answers"], refused["retry"]) == ("unavailable", "hello", True)

    monkeypatch.undo()  # the database is back: the same message goes through, once
    assert (await say(comm, "稍后", "later"))["seq"] > 0
    assert await database_sync_to_async(Message.objects.filter(client_id="later").count)() == 1


@pytest.mark.asyncio
async def test_it_counts_two_tabs_of_one_user_once_and_updates_presence_when_someone_leaves(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    def online(frame: dict[str, Any]) -> list[int]:
        return sorted(person["id"] for person in frame["online"])

    both = sorted([alice.pk, doctor.user.pk])
    tab_1 = await connect(alice, room_path(case.reference))
    assert online(await receive_until(tab_1, "presence")) == [alice.pk]
    tab_2 = await connect(alice, room_path(case.reference))
    assert online(await receive_until(tab_2, "presence")) == [alice.pk]
    theirs = await connect(doctor.user, room_path(case.reference))
    assert online(await receive_until(theirs, "presence")) == both
    assert online(of_type(await frames_until_quiet(tab_1), "presence")[-1]) == both
    _, synced = await hello(theirs)
    assert online(synced) == both
    assert await database_sync_to_async(Connection.objects.filter(case=case).count)() == 3

    await tab_2.disconnect()
    assert online(await receive_until(theirs, "presence")) == both  # alice still has a tab open
    await tab_1.disconnect()
    assert online(await receive_until(theirs, "presence")) == [doctor.user.pk]
    await frames_until_quiet(theirs)

    await theirs.disconnect()
    assert await database_sync_to_async(Connection.objects.filter(case=case).count)() == 0


# --- status, access lost, logout ----------------------------------------------------------


@pytest.mark.asyncio
async def test_it_shows_a_status_change_as_a_translated_system_message_to_everyone(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    doctor.user.language = "en"
    await database_sync_to_async(doctor.user.save)(update_fields=["language"])
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
        await frames_until_quiet(comm)

    await database_sync_to_async(services.case_accept)(case=case, professional=doctor)

    for comm, text, label in ((mine, "王芳 接受了咨询", "处理中"), (theirs, "王芳 accepted the case", "In progress")):
        frames = await frames_until_quiet(comm)
        assert [f["type"] for f in frames] == ["message", "status"]
        message = frames[0]["message"]
        assert (message["seq"], message["kind"], message["sender_id"]) == (2, "system", doctor.user.pk)
        assert message["detail"] == {"verb": "accepted"}
        assert message["text"] == text
        assert frames[1] == {"type": "status", "status": "active", "label": label}

    # Someone who was away gets the same line, translated, when they resync.
    replayed, _synced = await hello(mine, last_seq=1)
    assert [(m["kind"], m["text"]) for m in replayed] == [("system", "王芳 接受了咨询")]


@pytest.mark.asyncio
async def test_it_closes_the_old_doctors_socket_with_4403_when_a_coordinator_reassigns(
    connect: Connect, alice: User, doctor: Professional, other_doctor: Professional, coordinator: User, case: Case
) -> None:
    mine = await connect(alice, room_path(case.reference))
    old = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, old):
        await hello(comm)
        await frames_until_quiet(comm)

    await database_sync_to_async(services.case_reassign)(
        case=case, coordinator=coordinator, professional=other_doctor
    )

    assert await receive_until(old, "closed") == {"type": "closed", "reason": "access"}
    assert await closed_with(old) == consumers.CLOSE_ACCESS_LOST == 4403
    # The resident stays, sees the change, and can still write; the new doctor gets in.
    status = await receive_until(mine, "status")
    assert status["status"] == Status.ASSIGNED
    await say(mine, "新医生您好", "after-reassign")
    new = await connect(other_doctor.user, room_path(case.reference))
    assert new.accepted
    assert not (await connect(doctor.user, room_path(case.reference))).accepted


@pytest.mark.asyncio
async def test_it_closes_the_socket_with_4401_when_the_user_logs_out(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    client, cookie = await logged_in(alice)
    mine = await connect(alice, room_path(case.reference), cookie=cookie)
    theirs = await connect(doctor.user, room_path(case.reference))
    for comm in (mine, theirs):
        await hello(comm)
        await frames_until_quiet(comm)

    await database_sync_to_async(client.logout)()

    assert await receive_until(mine, "closed") == {"type": "closed", "reason": "logout"}
    assert await closed_with(mine) == consumers.CLOSE_LOGGED_OUT == 4401
    assert of_type(await frames_until_quiet(theirs), "closed") == []
    await say(theirs, "还在", "still-here")
    assert not (await connect(alice, room_path(case.reference), cookie=cookie)).accepted


@pytest.mark.asyncio
async def test_it_closes_every_socket_of_a_deactivated_user(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    mine = await connect(alice, room_path(case.reference))
    theirs = await connect(doctor.user, room_path(case.reference))
    their_queue = await connect(doctor.user, "/ws/queue/")
    for comm in (mine, theirs):
        await hello(comm)
        await frames_until_quiet(comm)

    doctor.user.is_active = False
    await database_sync_to_async(doctor.user.save)()

    assert await closed_with(theirs) == 4401
    assert await closed_with(their_queue) == 4401
    assert of_type(await frames_until_quiet(mine), "closed") == []
    assert not (await connect(doctor.user, room_path(case.reference))).accepted


# --- place in line -----------------------------------------------------------------------


@pytest.fixture
def waiting_cases(
    alice: User, bob: User, cardiology: Skill, professional_factory: Callable[..., Professional]
) -> tuple[Case, Case, Professional]:
    """Bob's then Alice's cardiology case, both waiting: the only cardiologist is off duty."""
    cardiologist = professional_factory([cardiology], name="赵医生", on_duty=False)
    first = services.case_submit(resident=bob, skill=cardiology, description="胸闷。", priority=Priority.NORMAL)
    second = services.case_submit(resident=alice, skill=cardiology, description="心慌。", priority=Priority.NORMAL)
    assert first.status == second.status == Status.WAITING
    Professional.objects.filter(pk=cardiologist.pk).update(on_duty=True)  # quietly: no event
    return first, second, cardiologist


@pytest.mark.asyncio
async def test_it_tells_a_waiting_resident_their_place_when_the_queue_ahead_moves(
    connect: Connect, alice: User, waiting_cases: tuple[Case, Case, Professional]
) -> None:
    _bobs, alices, cardiologist = waiting_cases
    mine = await connect(alice, room_path(alices.reference))
    on_arrival = await receive_until(mine, "place")
    assert on_arrival["place"] == 2
    await frames_until_quiet(mine)

    taken = await database_sync_to_async(services.case_claim_next)(professional=cardiologist)
    assert taken is not None and taken.pk != alices.pk

    places = of_type(await frames_until_quiet(mine), "place")
    assert places, "no place frame after the case ahead was taken"
    assert places[-1]["place"] == 1
    assert isinstance(places[-1]["wait"], str) and places[-1]["wait"]
    assert isinstance(places[-1]["wait_seconds"], int)


@pytest.mark.asyncio
async def test_it_works_out_the_line_once_for_all_the_residents_waiting_in_it(
    connect: Connect, cardiology: Skill, professional_factory: Callable[..., Professional],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A queue change reaches every waiting resident's socket; they share one read of the line
    (realtime/lines.py), not a count of the cases ahead each."""
    waiting = 12
    cardiologist = await database_sync_to_async(professional_factory)([cardiology], name="赵医生", on_duty=False)

    def submit_all() -> list[tuple[User, Case]]:
        made = []
        for n in range(waiting):
            resident = services.resident_signup(phone=f"1370000{n:04d}", name=f"居民{n}", password=PASSWORD)
            made.append((resident, services.case_submit(resident=resident, skill=cardiology, description="心慌。")))
        Professional.objects.filter(pk=cardiologist.pk).update(on_duty=True)  # quietly: no event
        return made

    residents = await database_sync_to_async(submit_all)()
    sockets = [await connect(resident, room_path(case.reference)) for resident, case in residents]
    for n, socket in enumerate(sockets, start=1):
        assert (await receive_until(socket, "place"))["place"] == n
        await frames_until_quiet(socket)

    reads = {"line": 0, "place": 0}
    for name, selector in (("line", selectors.queue_line), ("place", selectors.queue_place)):
        def counted(*args: Any, name: str = name, selector: Any = selector, **kwargs: Any) -> Any:
            reads[name] += 1
            return selector(*args, **kwargs)

        monkeypatch.setattr(selectors, f"queue_{name}", counted)

    taken = await database_sync_to_async(services.case_claim_next)(professional=cardiologist)
    assert taken is not None and taken.pk == residents[0][1].pk

    for n, socket in enumerate(sockets[1:], start=1):
        places = of_type(await frames_until_quiet(socket), "place")
        assert places and places[-1]["place"] == n, places
        assert isinstance(places[-1]["wait_seconds"], int)
    assert of_type(await frames_until_quiet(sockets[0]), "place") == []  # taken: out of the line
    assert reads == {"line": 1, "place": 0}


# --- cost of a message ---------------------------------------------------------------------


def statements(context: CaptureQueriesContext) -> list[str]:
    """The queries, without transaction control (SQLite's IMMEDIATE mode logs BEGIN and COMMIT)."""
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in context.captured_queries if not q["sql"].upper().startswith(control)]


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_message_in_one_statement_on_postgresql_and_finds_a_retry_by_its_refused_insert(
    alice: User, case: Case
) -> None:
    room_case = selectors.case_get_for_user(user=alice, reference=case.reference)  # as the consumer holds it
    one_insert = 1 if connection.vendor == "postgresql" else 2  # elsewhere the number is taken first
    with CaptureQueriesContext(connection) as posting:
        message, created = chat.message_post(case=room_case, sender=alice, body="查询次数", client_id="q-1")
    assert created and message.seq == 2
    assert len(statements(posting)) == one_insert, statements(posting)

    with CaptureQueriesContext(connection) as retrying:
        again, created = chat.message_post(case=room_case, sender=alice, body="查询次数", client_id="q-1")
    assert not created and again.pk == message.pk
    assert len(statements(retrying)) == one_insert + 1, statements(retrying)  # the refused insert, the lookup
    # The refused insert took its number back: the next message is 3.
    after, created = chat.message_post(case=room_case, sender=alice, body="下一条", client_id="q-2")
    assert created and after.seq == 3


@pytest.mark.asyncio
async def test_it_broadcasts_nothing_for_a_message_whose_transaction_rolls_back(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    theirs = await connect(doctor.user, room_path(case.reference))
    await hello(theirs)
    await frames_until_quiet(theirs)
    room_case = await database_sync_to_async(selectors.case_get_for_user)(user=alice, reference=case.reference)

    def post_then_roll_back() -> None:
        with transaction.atomic():
            chat.message_post(case=room_case, sender=alice, body="回滚", client_id="rolled-back")
            transaction.set_rollback(True)

    await database_sync_to_async(post_then_roll_back)()
    assert await frames_until_quiet(theirs) == []

    await database_sync_to_async(chat.message_post)(case=room_case, sender=alice, body="提交", client_id="kept")
    heard = of_type(await frames_until_quiet(theirs), "message")
    assert [(m["message"]["seq"], m["message"]["body"]) for m in heard] == [(2, "提交")]

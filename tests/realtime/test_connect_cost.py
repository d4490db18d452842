"""What a socket costs the database: one trip to the database threads for its user and access
check, presence rows written for many sockets at once, without a disk flush, and written again when
they go missing; no health check before each call on a connection in use."""

from __future__ import annotations

import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError, connection
from django.db.utils import InterfaceError
from knox.models import AuthToken

from consult.models import Case, Professional, User
from realtime import db as realtime_db
from realtime.models import Connection
from tests.realtime.conftest import Connect, Socket, receive_until, room_path, socket_for

pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on the database threads, by name."""
    made: list[str] = []
    original = realtime_db._OnDatabaseThread.thread_handler

    def counted(self: Any, loop: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(self.func, "__name__", "?"))
        return original(self, loop, *args, **kwargs)

    monkeypatch.setattr(realtime_db._OnDatabaseThread, "thread_handler", counted)
    return made


@pytest.mark.asyncio
async def test_it_reads_a_sessions_user_with_the_access_check_in_one_trip_to_the_database(
    connect: Connect, alice: User, doctor: Professional, case: Case, trips: list[str]
) -> None:
    comm = await connect(alice, room_path(case.reference))  # the session cookie is made before
    assert comm.accepted
    online = await receive_until(comm, "presence")
    assert [person["id"] for person in online["online"]] == [alice.pk]  # the session's user
    assert trips == ["open_connection", "write"]  # the user and the access check; the presence row


@pytest.mark.asyncio
async def test_it_reads_a_tokens_user_with_the_access_check_in_one_trip_to_the_database(
    alice: User, bob: User, doctor: Professional, case: Case, trips: list[str]
) -> None:
    _, token = await database_sync_to_async(AuthToken.objects.create)(alice)
    _, bobs = await database_sync_to_async(AuthToken.objects.create)(bob)

    def with_token(value: str) -> Socket:
        comm = socket_for(room_path(case.reference), origin=None)
        comm.scope["headers"].append((b"authorization", f"Token {value}".encode()))
        return comm

    comm = with_token(token)
    accepted, _ = await comm.connect(timeout=2)
    assert accepted
    online = await receive_until(comm, "presence")
    assert [person["id"] for person in online["online"]] == [alice.pk]  # the token's user
    assert trips == ["open_connection", "write"]
    await comm.disconnect()

    # The lazily read user is still the one who decides: bob's token does not open alice's case.
    refused = with_token(bobs)
    accepted, _ = await refused.connect(timeout=2)
    assert not accepted


@pytest.mark.asyncio
async def test_it_writes_presence_again_when_its_row_went_missing(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")
    # As after a database crash or a failover on PostgreSQL, where presence is not kept.
    await database_sync_to_async(Connection.objects.all().delete)()

    await comm.send_json_to({"type": "ping"})
    await receive_until(comm, "pong")

    rows = await database_sync_to_async(lambda: list(Connection.objects.values_list("case_id", "user_id")))()
    assert rows == [(case.pk, alice.pk)]


def test_it_keeps_presence_rows_out_of_the_write_ahead_log_on_postgresql(db: Any, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("UNLOGGED tables are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'realtime_connection'")
        assert cursor.fetchone() == ("u",)


@pytest.mark.asyncio
async def test_it_health_checks_a_database_thread_connection_only_after_it_was_idle(
    alice: User, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that died while in use fails one call (whose caller retries) and is replaced;
    one that died while idle is found out by the health check before the call, which succeeds."""
    if not is_postgres:
        pytest.skip("a SQLite connection cannot die under the process")

    def keep_connection() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = int(cursor.fetchone()[0])
        # As in production: a persistent, health-checked connection (the tests otherwise close
        # it after each call).
        connection.close_at = None
        connection.health_check_enabled = True  # type: ignore[attr-defined]
        return pid

    def count_users() -> int:
        return User.objects.filter(pk=alice.pk).count()

    def terminate(pid: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        time.sleep(0.2)

    call = realtime_db.db
    threads = realtime_db._executor._max_workers
    try:
        # Every database thread holds a persistent connection, just used; all of them die.
        pids = {await call(keep_connection)() for _ in range(threads * 3)}
        for pid in pids:
            await database_sync_to_async(terminate)(pid)
        failures = 0
        for _ in range(threads * 3):
            try:
                await call(count_users)()
            except (OperationalError, InterfaceError):
                failures += 1
        assert failures >= 1  # used a moment ago: no check, the call meets the dead connection
        assert await call(count_users)() == 1  # and the next call on that thread has a new one

        pids = {await call(keep_connection)() for _ in range(threads * 3)}
        for pid in pids:
            await database_sync_to_async(terminate)(pid)
        monkeypatch.setattr(realtime_db, "CHECK_AFTER_IDLE_SECONDS", 0.0)  # every connection idle
        assert [await call(count_users)() for _ in range(threads * 3)] == [1] * (threads * 3)
    finally:
        realtime_db.close_connections()


@pytest.mark.asyncio
async def test_it_replays_a_page_a_hello_with_who_is_online_on_the_last_page(
    connect: Connect, alice: User, doctor: Professional, case: Case, trips: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consult.services import messages as chat
    from realtime import consumers
    from tests.realtime.conftest import hello

    monkeypatch.setattr(consumers, "REPLAY_PAGE", 3)
    for n in range(7):
        await database_sync_to_async(chat.message_post)(case=case, sender=alice, body=f"第{n}条", client_id=f"c{n}")
    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")  # the connect's presence row, written after the accept
    trips.clear()

    seqs: list[int] = []
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1].get("more"):
        replayed, synced = await hello(comm, last_seq=seqs[-1] if seqs else 0)
        seqs += [m["seq"] for m in replayed]
        pages.append(synced)

    assert seqs == list(range(1, len(seqs) + 1)) and pages[-1]["last_seq"] == seqs[-1] >= 7
    assert len(pages) == seqs[-1] // 3 + 1  # full pages of 3; the last one short (or empty)
    assert [page.get("more") for page in pages] == [True] * (len(pages) - 1) + [None]
    assert "online" not in pages[0] and [person["id"] for person in pages[-1]["online"]] == [alice.pk]
    assert trips == ["replay"] * len(pages)  # one trip a page


@pytest.mark.asyncio
async def test_it_refuses_an_expired_token_and_reads_a_valid_one_in_one_statement(
    alice: User, doctor: Professional, case: Case
) -> None:
    from datetime import timedelta

    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from realtime.auth import _token_user

    _, token = await database_sync_to_async(AuthToken.objects.create)(alice)
    _, expired = await database_sync_to_async(AuthToken.objects.create)(alice, expiry=timedelta(seconds=-1))

    def read(value: str) -> tuple[Any, int]:
        with CaptureQueriesContext(connection) as queries:
            user = _token_user(value)
        return user, len(queries)

    user, statements = await database_sync_to_async(read)(token)
    assert user == alice
    assert statements == 1  # the token with its user (knox's own check also reads all the user's tokens)
    user, _ = await database_sync_to_async(read)(expired)
    assert not user.is_authenticated
    assert await database_sync_to_async(AuthToken.objects.filter(expiry__lt=timezone.now()).count)() == 1

    comm = socket_for(room_path(case.reference), origin=None)
    comm.scope["headers"].append((b"authorization", f"Token {expired}".encode()))
    accepted, _ = await comm.connect(timeout=2)
    assert not accepted


@pytest.mark.asyncio
async def test_it_renews_a_tokens_expiry_at_most_once_an_hour(alice: User) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from realtime.auth import _token_user

    instance, token = await database_sync_to_async(AuthToken.objects.create)(alice)
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert isinstance(ttl, timedelta)

    def used_ago(minutes: int) -> tuple[int, Any]:
        """The statements a handshake's token read makes, the token last renewed `minutes` ago."""
        AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() + ttl - timedelta(minutes=minutes))
        with CaptureQueriesContext(connection) as queries:
            assert _token_user(token) == alice
        return len(queries), AuthToken.objects.get(pk=instance.pk).expiry

    statements, expiry = await database_sync_to_async(used_ago)(50)
    assert statements == 1  # read only: a reconnect storm writes nothing
    assert expiry < timezone.now() + ttl - timedelta(minutes=49)
    statements, expiry = await database_sync_to_async(used_ago)(70)
    assert statements == 2  # renewed: its 30 days count from now
    assert expiry > timezone.now() + ttl - timedelta(minutes=1)


@pytest.mark.asyncio
async def test_it_writes_the_presence_of_sockets_opening_and_closing_together_in_one_trip(
    connect: Connect, alice: User, bob: User, doctor: Professional, case: Case, trips: list[str]
) -> None:
    import asyncio

    from consult import services
    from realtime import presence

    def another() -> Case:
        return services.case_submit(resident=alice, skill=case.skill, description="又一个问题。")

    cases = [case] + [await database_sync_to_async(another)() for _ in range(3)]
    theirs = await connect(doctor.user, room_path(case.reference))
    await receive_until(theirs, "presence")
    trips.clear()

    # 20 sockets of alice's open at once, as after a restart.
    online = await asyncio.gather(*(
        presence.opened(case_id=cases[n % 4].pk, user_id=alice.pk, channel_name=f"storm-{n}") for n in range(20)
    ))
    assert trips == ["write"]  # one trip for them all (one each: 20)

    def rows() -> list[tuple[int, int]]:
        return sorted(Connection.objects.values_list("case_id", "user_id"))

    assert await database_sync_to_async(rows)() == sorted(
        [(cases[n % 4].pk, alice.pk) for n in range(20)] + [(case.pk, doctor.user.pk)]
    )
    everyone = sorted([alice.pk, doctor.user.pk])
    assert [sorted(p["id"] for p in people) for people in online] == [
        everyone if n % 4 == 0 else [alice.pk] for n in range(20)
    ]
    assert sorted(p["id"] for p in (await receive_until(theirs, "presence"))["online"]) == everyone

    trips.clear()
    await asyncio.gather(*(presence.closed(case_id=cases[n % 4].pk, channel_name=f"storm-{n}") for n in range(20)))
    assert trips == ["write"]
    assert await database_sync_to_async(rows)() == [(case.pk, doctor.user.pk)]
    assert [p["id"] for p in (await receive_until(theirs, "presence"))["online"]] == [doctor.user.pk]


@pytest.mark.asyncio
async def test_it_refuses_only_the_socket_whose_case_is_gone_in_a_batch(
    alice: User, doctor: Professional, case: Case
) -> None:
    import asyncio

    from django.db import IntegrityError

    from realtime import presence

    results = await asyncio.gather(
        presence.opened(case_id=case.pk, user_id=alice.pk, channel_name="kept"),
        presence.opened(case_id=case.pk + 1000, user_id=alice.pk, channel_name="gone"),
        return_exceptions=True,
    )
    kept = results[0]
    assert isinstance(kept, list) and [p["id"] for p in kept] == [alice.pk]
    assert isinstance(results[1], IntegrityError)
    names = await database_sync_to_async(lambda: list(Connection.objects.values_list("channel_name", flat=True)))()
    assert names == ["kept"]


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL run on the database threads, in order (not SQLite's BEGIN and COMMIT)."""
    from django.test.utils import CaptureQueriesContext

    run: list[str] = []
    original = realtime_db._OnDatabaseThread.thread_handler

    def captured(self: Any, loop: Any, *args: Any, **kwargs: Any) -> Any:
        with CaptureQueriesContext(connection) as queries:
            try:
                return original(self, loop, *args, **kwargs)
            finally:
                run.extend(q["sql"] for q in queries.captured_queries if not q["sql"].startswith(TRANSACTION))

    monkeypatch.setattr(realtime_db._OnDatabaseThread, "thread_handler", captured)
    return run


@pytest.mark.asyncio
@pytest.mark.parametrize("who", ["resident", "doctor"])
async def test_a_tokens_connect_costs_four_statements_and_reads_only_what_the_room_uses(
    who: str, alice: User, doctor: Professional, case: Case, statements: list[str]
) -> None:
    user = alice if who == "resident" else doctor.user
    _, token = await database_sync_to_async(AuthToken.objects.create)(user)
    comm = socket_for(room_path(case.reference), origin=None)
    comm.scope["headers"].append((b"authorization", f"Token {token}".encode()))
    accepted, _ = await comm.connect(timeout=2)
    assert accepted
    await receive_until(comm, "presence")

    # The token with its user; the case with the access rule; the presence row; who is online.
    assert len(statements) == 4, "\n".join(s[:90] for s in statements)
    token_read, case_read, insert, online = statements
    assert "knox_authtoken" in token_read and "consult_case" in case_read
    assert insert.startswith("INSERT") and "realtime_connection" in online
    # The case, its status and skill, and whether its two people are active: not the 78 columns
    # of the case with its skill, resident, assignee and the assignee's user.
    columns = case_read.split(" FROM ")[0].count(",") + 1
    assert columns <= 12 and "consult_skill" not in case_read, case_read
    await comm.send_json_to({"type": "typing"})  # the user's name and language, in the event loop
    await comm.send_json_to({"type": "message", "client_id": "c1", "body": "你好"})
    assert (await receive_until(comm, "ack"))["seq"] >= 1
    await comm.disconnect()


@pytest.mark.asyncio
async def test_it_answers_a_connect_before_the_presence_row_is_written(
    alice: User, doctor: Professional, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a storm the presence batches queue behind the other sockets' access checks: the
    handshake waits for its own access check only, and the presence follows."""
    import asyncio

    from realtime import presence

    release = asyncio.Event()
    original = presence.opened

    async def held(**kwargs: Any) -> Any:
        await release.wait()
        return await original(**kwargs)

    monkeypatch.setattr(presence, "opened", held)
    _, token = await database_sync_to_async(AuthToken.objects.create)(alice)
    comm = socket_for(room_path(case.reference), origin=None)
    comm.scope["headers"].append((b"authorization", f"Token {token}".encode()))
    accepted, _ = await comm.connect(timeout=2)
    assert accepted  # while the presence write is held
    release.set()
    assert [p["id"] for p in (await receive_until(comm, "presence"))["online"]] == [alice.pk]
    await comm.disconnect()


@pytest.mark.asyncio
async def test_a_hello_replays_what_the_room_broadcast_without_reading_the_case_again(
    connect: Connect, alice: User, doctor: Professional, case: Case, statements: list[str]
) -> None:
    from consult.models import Document
    from consult.services import messages as chat
    from tests.realtime.conftest import hello

    def post() -> list[dict[str, Any]]:
        document = Document.objects.create(
            case=case, uploader=alice, storage_key="replay-test", original_name="化验单.jpg",
            content_type="image/jpeg", size=1, sha256="0" * 64,
        )
        posted = [
            chat.message_post(case=case, sender=alice, body="你好", client_id="c1")[0],
            chat.message_post(case=case, sender=doctor.user, body="", client_id="c2", document=document)[0],
        ]
        return [chat.message_payload(message) for message in posted]

    payloads = await database_sync_to_async(post)()
    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")
    statements.clear()

    replayed, _synced = await hello(comm)
    assert replayed[-2:] == payloads  # as broadcast live, the document's name, kind and link included
    assert [m["kind"] for m in replayed[:-2]] == ["system"]  # "assigned", rendered as before
    assert payloads[1]["document"]["is_image"] and case.reference in payloads[1]["document"]["url"]
    assert len(statements) == 1  # the page (who is online: as the connect's presence write heard it)
    assert "consult_case" not in statements[0] and "realtime_connection" not in statements[0], statements[0]


@pytest.mark.asyncio
async def test_a_hello_names_who_is_online_as_the_room_last_announced_it_without_reading_it_again(
    connect: Connect, alice: User, doctor: Professional, case: Case, statements: list[str]
) -> None:
    from tests.realtime.conftest import hello

    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")
    theirs = await connect(doctor.user, room_path(case.reference))
    await receive_until(theirs, "presence")
    everyone = sorted([alice.pk, doctor.user.pk])
    assert sorted(p["id"] for p in (await receive_until(comm, "presence"))["online"]) == everyone
    statements.clear()

    _replayed, synced = await hello(comm)
    assert sorted(p["id"] for p in synced["online"]) == everyone  # the doctor's arrival, announced
    assert not any("realtime_connection" in sql for sql in statements), statements

    await theirs.disconnect()
    assert [p["id"] for p in (await receive_until(comm, "presence"))["online"]] == [alice.pk]
    _replayed, synced = await hello(comm)
    assert [p["id"] for p in synced["online"]] == [alice.pk]  # and her leaving


@pytest.mark.asyncio
@pytest.mark.parametrize("why", ["the layer lost events", "it is old"])
async def test_a_hello_reads_who_is_online_when_what_the_socket_heard_may_be_wrong(
    why: str, connect: Connect, alice: User, doctor: Professional, case: Case, statements: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from channels.layers import get_channel_layer

    from realtime import consumers
    from realtime.events import case_group
    from tests.realtime.conftest import hello

    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")
    # The doctor's socket on a process whose announcement this one never heard (written directly).
    await database_sync_to_async(Connection.objects.create)(
        case=case, user=doctor.user, channel_name="elsewhere"
    )
    if why == "the layer lost events":
        await get_channel_layer().group_send(case_group(case.pk), {"type": "layer.resync"})
        await receive_until(comm, "resync")
    else:
        monkeypatch.setattr(consumers, "ONLINE_HEARD_SECONDS", 0.0)
    statements.clear()

    _replayed, synced = await hello(comm)
    assert sorted(p["id"] for p in synced["online"]) == sorted([alice.pk, doctor.user.pk])
    assert len(statements) == 2 and "realtime_connection" in statements[1], statements


@pytest.mark.asyncio
async def test_the_sockets_token_read_checks_the_whole_token_and_the_users_state(
    alice: User, doctor: Professional, case: Case
) -> None:
    """knox's digest of the whole token must match (not only its key), and a deactivated user is
    refused."""
    from realtime.auth import _token_user

    _, token = await database_sync_to_async(AuthToken.objects.create)(alice)
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")  # same key, another secret

    assert await database_sync_to_async(_token_user)(token) == alice
    assert not (await database_sync_to_async(_token_user)(forged)).is_authenticated
    comm = socket_for(room_path(case.reference), origin=None)
    comm.scope["headers"].append((b"authorization", f"Token {forged}".encode()))
    accepted, _ = await comm.connect(timeout=2)
    assert not accepted

    await database_sync_to_async(User.objects.filter(pk=alice.pk).update)(is_active=False)
    assert not (await database_sync_to_async(_token_user)(token)).is_authenticated


@pytest.mark.asyncio
async def test_a_hello_and_a_presence_write_do_not_wait_behind_other_sockets_access_checks(
    connect: Connect, alice: User, doctor: Professional, case: Case
) -> None:
    """In a reconnect storm the database threads hold a queue of handshakes' access checks: an
    open socket's presence row and its hello's page go on a lane of their own."""
    import asyncio
    import threading

    from realtime import presence
    from tests.realtime.conftest import hello

    comm = await connect(alice, room_path(case.reference))
    await receive_until(comm, "presence")
    release = threading.Event()
    threads = realtime_db._executor._max_workers
    # Every one of the handshakes' threads busy, with more queued behind them.
    held = [asyncio.ensure_future(realtime_db.db(release.wait)(10)) for _ in range(threads * 3)]
    try:
        await asyncio.sleep(0.1)
        _replayed, synced = await hello(comm)
        assert [p["id"] for p in synced["online"]] == [alice.pk]
        online = await asyncio.wait_for(
            presence.opened(case_id=case.pk, user_id=doctor.user.pk, channel_name="another"), timeout=2
        )
        assert sorted(p["id"] for p in online) == sorted([alice.pk, doctor.user.pk])
        assert not any(task.done() for task in held)  # answered while the handshakes' threads were held
    finally:
        release.set()
        await asyncio.gather(*held)

"""The cast every test reuses, and the check that the services pass really has its services."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.client import ClientMixin

from consult import services
from consult.models import Kind, Priority, Professional, Role, Skill, User
from tests.sms import sms  # noqa: F401 - the fixture: one-time codes sent by SMS

PASSWORD = "a-Long-test-pass-7"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests of a minute or more first (in their order): run last, one of them held a whole
    # pass open for minutes after the other test processes had finished everything else.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionstart(session: pytest.Session) -> None:
    # In CI the second pass must really use PostgreSQL and Redis: a missing service fails the run.
    if os.environ.get("CONSULT_REQUIRE_SERVICES") == "1":
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.exit(f"services pass: DATABASE_URL is not PostgreSQL ({engine})", returncode=3)
        if not settings.REDIS_URL:
            pytest.exit("services pass: REDIS_URL is not set", returncode=3)
        import psycopg
        import redis

        db = settings.DATABASES["default"]
        try:
            psycopg.connect(
                host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres",
                password=db.get("PASSWORD") or None, connect_timeout=5,
            ).close()
        except Exception as error:
            pytest.exit(f"services pass: PostgreSQL is not reachable: {error}", returncode=3)
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5).ping()
        except Exception as error:
            pytest.exit(f"services pass: Redis is not reachable: {error}", returncode=3)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """The test process closes its connections after each use: threads that kept theirs open (as
    servers do) would stop the test database from being dropped. Servers the tests start keep theirs."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def flush_by_delete() -> Iterator[None]:
    """After each transactional test Django empties every table with one TRUNCATE on PostgreSQL,
    which makes new files for each of the ~100 tables and waits for an exclusive lock on all of
    them: 2 to 3 s a test, about 5 minutes of the services pass. DELETE empties the same few rows
    in milliseconds; the foreign keys (deferrable, as Django makes them) are checked at the end of
    the flush's transaction, so the order of the tables does not matter. Sequences are not reset
    either way (Django's flush after a test does not ask for it)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self: Any, style: Any, tables: Any, *, reset_sequences: bool = False, **options: Any) -> list[str]:
        if reset_sequences or options.get("allow_cascade"):
            return truncate(self, style, tables, reset_sequences=reset_sequences, **options)
        # The names are Django's own list of its tables, quoted.
        deletes = (f"DELETE FROM {self.quote_name(table)};" for table in tables)  # noqa: S608
        return ["SET CONSTRAINTS ALL DEFERRED;", *deletes]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(scope="session", autouse=True)
def realtime_connections_closed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """A socket's database work cut short when a test ends can leave its thread's connection open;
    they are closed before the test database is dropped."""
    yield
    from realtime.db import close_connections

    with django_db_blocker.unblock():
        close_connections()


@pytest.fixture(scope="session", autouse=True)
def jobs_run_inline() -> None:
    """Background jobs queued by the code under test run at once in its thread (Celery's eager
    mode): no worker serves the test process. Tests of the jobs machinery start real workers."""
    from consult.celery import app

    app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def away_checks_at_once(settings: Any) -> None:
    """The chat's away check queued for every message, to run at once (eager jobs would ignore
    its delay anyway); tests/realtime/test_offline_notice.py tests the delay and the one check per
    burst, tests/e2e a real worker running it after its delay."""
    settings.OFFLINE_NOTICE_DELAY_SECONDS = 0


@pytest.fixture(autouse=True)
def fresh_claim_notice_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's first claim queues its residents' notice job, as a lone claim does: a window the
    previous test opened a moment ago would hold it back (notices.tasks.claim_notify_soon;
    tests/notices/test_case_notices.py tests the window)."""
    from notices import tasks

    monkeypatch.setattr(tasks, "_batch", tasks._Batch())


@pytest.fixture(autouse=True)
def sms_outbox(settings: Any) -> Iterator[list[Any]]:
    """SMS go to `notices.outbox` (as e-mail to django.core.mail.outbox), emptied for each test.
    No quiet hours unless a test sets them: what a test sends must not depend on the hour it runs."""
    import notices

    settings.SMS_BACKEND = "notices.backends.locmem.SmsBackend"
    settings.NOTICE_QUIET_START = settings.NOTICE_QUIET_END = 0
    notices.outbox.clear()
    yield notices.outbox
    notices.outbox.clear()


def second_factor_device(user: User) -> Any:
    """`user`'s confirmed authenticator (made if missing), as after enrolling on the site."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def recovery_code(user: User) -> str:
    """A fresh single-use recovery code of `user` (the API's log-in takes one as `otp_code`)."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    device, _ = StaticDevice.objects.get_or_create(user=user, name="recovery codes", defaults={"confirmed": True})
    return str(device.token_set.create(token=StaticToken.random_token()).token)


def second_factor_fields(user: User) -> dict[str, str]:
    """What the API's log-in takes besides phone and password: a code for staff, nothing for residents."""
    from staff.services import needs_second_factor

    return {"otp_code": recovery_code(user)} if needs_second_factor(user) else {}


_force_login = ClientMixin.force_login


def unverified_login(client: Client, user: User) -> None:
    """A session after the password only: staff are then held at the second-factor pages."""
    _force_login(client, user)


@pytest.fixture(autouse=True)
def staff_sessions_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    """`client.force_login(user)` gives staff a session that has proved its second factor, as a
    doctor's or coordinator's is after the code page: tests of other things log staff in as they
    did. It stores the device in the session as the code page does; the middleware, the admin and
    the sockets check it as in production. `unverified_login` skips it."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from staff.services import needs_second_factor

    def force_login(self: ClientMixin, user: Any, backend: str | None = None) -> None:
        _force_login(self, user, backend)
        if needs_second_factor(user):
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = second_factor_device(user).persistent_id
            session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Full-strength hashing costs seconds per user on this machine; tests need none of it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Rate limits (consult/limits.py) count in the cache, which outlives a test (and is Redis in
    the services pass): every test starts with no tries counted, whatever the last one did. Only
    before the test: after it, a test may have pointed the cache at a server that is down."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def skill_factory(db: Any) -> Callable[..., Skill]:
    counter = iter(range(1, 10_000))

    def make(kind: str = Kind.MEDICAL, code: str | None = None, **extra: Any) -> Skill:
        n = next(counter)
        fields: dict[str, Any] = dict(
            kind=kind, name_zh=f"服务{n}", name_en=f"Service {n}", office_zh="办公室",
            office_en="Office", office_phone="0571-12345", response_hours=24,
            materials_zh="检查报告\n药物清单", materials_en="Exam report\nMedicines",
        )
        fields.update(extra)
        return Skill.objects.create(code=code or f"skill-{n}", **fields)

    return make


@pytest.fixture
def respiratory(skill_factory: Callable[..., Skill]) -> Skill:
    return skill_factory(code="respiratory", name_zh="呼吸科", name_en="Respiratory medicine")


@pytest.fixture
def cardiology(skill_factory: Callable[..., Skill]) -> Skill:
    return skill_factory(code="cardiology", name_zh="心内科", name_en="Cardiology")


@pytest.fixture
def sick_pay(skill_factory: Callable[..., Skill]) -> Skill:
    return skill_factory(kind=Kind.LEGAL, code="sick-pay", name_zh="病假工资", name_en="Sick pay")


@pytest.fixture
def professional_factory(db: Any) -> Callable[..., Professional]:
    counter = iter(range(1, 10_000))

    def make(
        skills: list[Skill], role: str = Role.DOCTOR, capacity: int = 5, on_duty: bool = True, name: str = ""
    ) -> Professional:
        n = next(counter)
        return services.professional_create(
            phone=f"139{n:08d}", name=name or f"医生{n}", role=role, password=PASSWORD,
            organisation="市第一人民医院" if role == Role.DOCTOR else "市总工会", city="杭州",
            skills=skills, capacity=capacity, on_duty=on_duty,
        )

    return make


@pytest.fixture
def alice(db: Any) -> User:
    """The resident who owns the case."""
    return services.resident_signup(phone="13800000001", name="王秀英", password=PASSWORD)


@pytest.fixture
def bob(db: Any) -> User:
    """Another resident."""
    return services.resident_signup(phone="13800000002", name="李大山", password=PASSWORD)


@pytest.fixture
def doctor(professional_factory: Callable[..., Professional], respiratory: Skill) -> Professional:
    """The doctor the case gets assigned to (the only one on duty in respiratory)."""
    return professional_factory([respiratory], name="王芳")


@pytest.fixture
def other_doctor(professional_factory: Callable[..., Professional], respiratory: Skill) -> Professional:
    """A doctor of the same skill who is not on the case (off duty, so matching skips them)."""
    return professional_factory([respiratory], name="陈志强", on_duty=False)


@pytest.fixture
def lawyer(professional_factory: Callable[..., Professional], sick_pay: Skill) -> Professional:
    return professional_factory([sick_pay], role=Role.LAWYER, name="张律师")


@pytest.fixture
def coordinator(db: Any) -> User:
    """A coordinator of both domains (the cast's cases are medical and legal)."""
    return services.coordinator_create(
        phone="13600000001", name="周协调", password=PASSWORD, domains=[Kind.MEDICAL, Kind.LEGAL]
    )


@pytest.fixture
def case(
    alice: User, respiratory: Skill, doctor: Professional, other_doctor: Professional, lawyer: Professional
) -> Any:
    """Alice's respiratory case, assigned to `doctor` on submit."""
    return services.case_submit(
        resident=alice, skill=respiratory, description="咳嗽两周，夜里加重。", priority=Priority.NORMAL
    )


@pytest.fixture
def login() -> Callable[[User | None], Client]:
    def make(user: User | None, language: str = "zh-hans") -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"

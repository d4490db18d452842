"""Access that ends (issue 14): logout, token revocation, a new password (changed or reset by code),
a new phone number, a new role and deactivation end the sessions, API tokens and sockets they
should, within the moment it takes the event to cross the channel layer.

- A logout (web or API) ends the session or token it is made with, and the sockets opened with it.
- A new password and a new number end every other session, token and socket of the account; the
  session or token the change was made with stays, with its sockets. A reset by code (nobody
  signed in) ends them all.
- "Log out everywhere", a new role and deactivation end everything.
- So does a narrower scope: a coordinator's domains changed, a professional's kind changed or a
  skill taken away (a socket opened under the old scope would go on receiving what the new one no
  longer allows), and a staff member's second factor reset in the admin. A new authenticator or new
  recovery codes end the others, the session they were made in stays.

Sockets are opened through the real ASGI stack (session cookie or `Authorization: Token`), on the
real channel layer (in memory, or Redis in the services pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from rest_framework.test import APIClient

from consult.models import Case, Kind, Professional, Role, Skill, User
from realtime import consumers
from tests.accounts.conftest import zh
from tests.conftest import PASSWORD, recovery_code, second_factor_device
from tests.realtime.conftest import (
    QUEUE_PATH,
    TIMEOUT,
    Connect,
    Socket,
    closed_with,
    frames_until_quiet,
    hello,
    of_type,
    receive_until,
    room_path,
    say,
    socket_for,
)
from tests.sms import Sms

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/"
NEW_PASSWORD = "another-Long-pass-8"
NEW_PHONE = "13800009999"


@database_sync_to_async
def token_of(user: User) -> str:
    """A token as the API's log-ins make one."""
    _instance, token = AuthToken.objects.create(user)
    return token


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@database_sync_to_async
def api_works(token: str) -> bool:
    """Whether the token still opens the API (its list of cases)."""
    status = api(token).get(f"{API}cases/").status_code
    assert status in (200, 401), status
    return status == 200


@database_sync_to_async
def browser_of(user: User) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


@database_sync_to_async
def page_works(client: Client) -> bool:
    """Whether the browser is still logged in (its cases page, else a redirect to log in)."""
    status = client.get(reverse("my_cases")).status_code
    assert status in (200, 302), status
    return status == 200


@dataclass
class Device:
    """A browser (its session) or an app (its token), signed in as one user, with a socket open
    in the case room (or the queue feed) and said hello."""

    socket: Socket
    client: Client | None = None
    token: str | None = None

    async def signed_in(self) -> bool:
        if self.token is not None:
            return await api_works(self.token)
        assert self.client is not None
        return await page_works(self.client)

    async def stays(self, client_id: str) -> None:
        """Its socket is not closed and can still post; it is still signed in."""
        assert of_type(await frames_until_quiet(self.socket), "closed") == []
        await say(self.socket, "还在", client_id)
        assert await self.signed_in()

    async def ends(self) -> None:
        """Its socket is closed as logged out (4401), and it is signed out."""
        assert await closed_with(self.socket) == consumers.CLOSE_LOGGED_OUT == 4401
        assert not await self.signed_in()


Open = Callable[..., Awaitable[list[Device]]]


@pytest_asyncio.fixture
async def devices(connect: Connect) -> AsyncIterator[Open]:
    """`await devices(user, path, "browser", "app", ...)`: one device of each kind named. Apps'
    sockets are disconnected after the test (the `connect` fixture does the browsers')."""
    apps: list[Socket] = []

    async def open_device(user: User, kind: str, path: str) -> Device:
        if kind == "browser":
            client, cookie = await browser_of(user)
            made = Device(await connect(user, path, cookie=cookie), client=client)
        else:
            token = await token_of(user)
            comm = socket_for(path, origin=None)
            comm.scope["headers"].append((b"authorization", f"Token {token}".encode()))
            apps.append(comm)
            comm.accepted, _detail = await comm.connect(timeout=TIMEOUT)
            made = Device(comm, token=token)
        assert made.socket.accepted
        if path != QUEUE_PATH:
            await hello(made.socket)
        await frames_until_quiet(made.socket)
        return made

    async def open_devices(user: User, path: str, *kinds: str) -> list[Device]:
        return [await open_device(user, kind, path) for kind in kinds]

    yield open_devices
    for comm in apps:
        try:
            await comm.disconnect(timeout=TIMEOUT)
        except (Exception, asyncio.CancelledError):  # noqa: S110 - closed already, or cancelled by a timed-out receive
            pass


# --- one logout ends one session or token ---------------------------------------------------


@pytest.mark.asyncio
async def test_it_closes_the_tokens_socket_at_api_logout_and_nothing_else(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    phone, tablet, browser = await devices(alice, room, "app", "app", "browser")
    assert phone.token is not None

    response = await database_sync_to_async(api(phone.token).post)(f"{API}auth/logout/")
    assert response.status_code == 204

    assert await receive_until(phone.socket, "closed") == {"type": "closed", "reason": "logout"}
    await phone.ends()
    await tablet.stays("tablet")
    await browser.stays("browser")


@pytest.mark.asyncio
async def test_it_closes_only_that_browsers_sockets_at_web_logout(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    home, work, phone = await devices(alice, room, "browser", "browser", "app")
    assert home.client is not None

    await database_sync_to_async(home.client.post)(reverse("logout"))

    await home.ends()
    await work.stays("at-work")
    await phone.stays("phone")


# --- "log out everywhere" ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_every_token_session_and_socket_when_the_app_logs_out_everywhere(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    mine, other, browser = await devices(alice, room, "app", "app", "browser")
    assert mine.token is not None

    response = await database_sync_to_async(api(mine.token).post)(f"{API}auth/logout/all/")
    assert response.status_code == 204

    for each in (mine, other, browser):
        await each.ends()


@pytest.mark.asyncio
async def test_it_ends_every_session_from_the_web_log_out_everywhere(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    here, there, app = await devices(alice, room, "browser", "browser", "app")
    assert here.client is not None
    page = await database_sync_to_async(here.client.get)(reverse("password_change"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh("Log out everywhere") in page.content.decode()

    response = await database_sync_to_async(here.client.post)(
        reverse("accounts:logout_everywhere"), HTTP_ACCEPT_LANGUAGE="zh-hans", follow=True
    )

    assert zh("You are logged out on every device.") in response.content.decode()
    for each in (here, there, app):
        await each.ends()


# --- a new password -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_the_other_tokens_sessions_and_sockets_when_the_password_is_changed(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    here, there, app = await devices(alice, room, "browser", "browser", "app")
    assert here.client is not None

    changed = await database_sync_to_async(here.client.post)(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302 and changed["Location"] == reverse("password_change_done")

    await there.ends()
    await app.ends()  # its token used to work on for 30 days, renewed on every use
    # The browser the password was changed in stays logged in, its open pages connected.
    await here.stays("here")


@pytest.mark.asyncio
async def test_it_ends_everything_when_the_password_is_reset_by_code_in_the_api(
    devices: Open, alice: User, doctor: Professional, case: Case, sms: Sms
) -> None:
    room = room_path(case.reference)
    browser, app = await devices(alice, room, "browser", "app")

    def reset() -> Any:
        client = APIClient()
        asked = client.post(f"{API}auth/code/", {"phone": alice.phone, "purpose": "reset"}, format="json")
        assert asked.status_code == 202
        code = sms.last(alice.phone)
        return client.post(
            f"{API}auth/password/reset/", {"phone": alice.phone, "code": code, "password": NEW_PASSWORD}, format="json"
        )

    response = await database_sync_to_async(reset)()
    assert response.status_code == 200

    await browser.ends()
    await app.ends()
    assert await api_works(response.json()["token"])  # the one the reset answers


@pytest.mark.asyncio
async def test_it_ends_everything_when_the_password_is_reset_by_code_on_the_pages(
    devices: Open, alice: User, doctor: Professional, case: Case, sms: Sms
) -> None:
    room = room_path(case.reference)
    browser, app = await devices(alice, room, "browser", "app")

    def reset() -> Client:
        client = Client()
        assert client.post(reverse("accounts:reset"), {"phone": alice.phone}).status_code == 302
        code = sms.last(alice.phone)
        done = client.post(
            reverse("accounts:reset_code"), {"code": code, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        )
        assert done.status_code == 302, done.content
        return client

    resetting = await database_sync_to_async(reset)()

    await browser.ends()
    await app.ends()
    assert await page_works(resetting)


# --- a new phone number -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_the_other_sessions_tokens_and_sockets_when_the_number_changes_on_the_pages(
    devices: Open, alice: User, doctor: Professional, case: Case, sms: Sms
) -> None:
    room = room_path(case.reference)
    here, there, app = await devices(alice, room, "browser", "browser", "app")
    assert here.client is not None
    client = here.client

    def change() -> Any:
        assert client.post(reverse("accounts:phone"), {"phone": NEW_PHONE}).status_code == 302
        return client.post(reverse("accounts:phone_code"), {"code": sms.last(NEW_PHONE)})

    done = await database_sync_to_async(change)()
    assert done.status_code == 302

    await there.ends()
    await app.ends()
    await here.stays("here")


@pytest.mark.asyncio
async def test_it_ends_the_other_sessions_tokens_and_sockets_when_the_number_changes_in_the_api(
    devices: Open, alice: User, doctor: Professional, case: Case, sms: Sms
) -> None:
    room = room_path(case.reference)
    browser, mine, other = await devices(alice, room, "browser", "app", "app")
    assert mine.token is not None
    client = api(mine.token)

    def change() -> Any:
        asked = client.post(f"{API}auth/code/", {"phone": NEW_PHONE, "purpose": "change_phone"}, format="json")
        assert asked.status_code == 202
        return client.post(f"{API}auth/phone/", {"phone": NEW_PHONE, "code": sms.last(NEW_PHONE)}, format="json")

    response = await database_sync_to_async(change)()
    assert response.status_code == 200

    await browser.ends()
    await other.ends()
    await mine.stays("mine")


# --- a new role, deactivation --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_every_session_token_and_socket_of_a_coordinator_made_a_resident(
    devices: Open, coordinator: User, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    ended = [*await devices(coordinator, room, "browser", "app"), *await devices(coordinator, QUEUE_PATH, "browser")]
    [residents] = await devices(alice, room, "browser")

    def demote() -> None:
        # As the admin's user form saves it.
        user = User.objects.get(pk=coordinator.pk)
        user.role = Role.RESIDENT
        user.is_staff = False
        user.save()

    await database_sync_to_async(demote)()

    for each in ended:
        await each.ends()
    await residents.stays("resident")


@pytest.mark.asyncio
async def test_it_ends_every_token_and_socket_of_a_deactivated_user_for_good(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    ended = [
        *await devices(doctor.user, room_path(case.reference), "browser"),
        *await devices(doctor.user, QUEUE_PATH, "app"),
    ]

    def deactivate_then_reactivate() -> None:
        user = User.objects.get(pk=doctor.user.pk)
        user.is_active = False
        user.save()
        user.is_active = True  # a mistake undone: what was ended stays ended
        user.save()

    await database_sync_to_async(deactivate_then_reactivate)()

    for each in ended:
        await each.ends()
    assert await database_sync_to_async(AuthToken.objects.filter(user=doctor.user).count)() == 0


@pytest.mark.asyncio
async def test_it_leaves_sessions_and_tokens_alone_when_other_details_change(
    devices: Open, alice: User, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    browser, app = await devices(alice, room, "browser", "app")

    def rename() -> None:
        user = User.objects.get(pk=alice.pk)
        user.name = "王秀英（母亲）"
        user.language = "en"
        user.save()

    await database_sync_to_async(rename)()

    await browser.stays("browser")
    await app.stays("app")


# --- a narrower scope: a coordinator's domains, a professional's kind and skills, a second factor ---


def code_now(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


# --- a coordinator's domains ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"domains": [Kind.LEGAL]}, id="a domain taken away"),
        pytest.param({"domains": [Kind.MEDICAL, Kind.LEGAL], "platform_wide": False}, id="no longer platform-wide"),
    ],
)
@pytest.mark.asyncio
async def test_it_ends_every_session_token_and_socket_of_a_coordinator_whose_domains_change(
    change: dict[str, Any], devices: Open, coordinator: User, alice: User, doctor: Professional, case: Case
) -> None:
    await database_sync_to_async(User.objects.filter(pk=coordinator.pk).update)(platform_wide=True)
    ended = [
        *await devices(coordinator, room_path(case.reference), "browser", "app"),
        *await devices(coordinator, QUEUE_PATH, "browser"),
    ]
    [residents] = await devices(alice, room_path(case.reference), "browser")

    def narrow() -> None:
        # As the admin's user form saves it.
        user = User.objects.get(pk=coordinator.pk)
        for field, value in change.items():
            setattr(user, field, value)
        user.save()

    await database_sync_to_async(narrow)()

    for each in ended:
        await each.ends()
    await residents.stays("resident")


@pytest.mark.asyncio
async def test_it_leaves_a_coordinator_signed_in_when_the_same_domains_are_saved_in_another_order(
    devices: Open, coordinator: User, case: Case
) -> None:
    browser, app = await devices(coordinator, room_path(case.reference), "browser", "app")

    def reorder() -> None:
        user = User.objects.get(pk=coordinator.pk)
        user.domains = list(reversed(user.domains))
        user.save()

    await database_sync_to_async(reorder)()

    await browser.stays("browser")
    await app.stays("app")


# --- a professional's kind and skills ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_a_doctors_sessions_tokens_and_sockets_when_a_skill_is_taken_away(
    devices: Open, doctor: Professional, case: Case, skill_factory: Any
) -> None:
    cardiology: Skill = await database_sync_to_async(skill_factory)(code="cardiology", name_zh="心内科")
    await database_sync_to_async(doctor.skills.add)(cardiology)
    ended = [
        *await devices(doctor.user, QUEUE_PATH, "browser", "app"),
        *await devices(doctor.user, room_path(case.reference), "browser"),
    ]

    # As the admin's professional form saves its skills (ModelForm.save_m2m: `set`).
    await database_sync_to_async(doctor.skills.set)([cardiology])

    for each in ended:
        await each.ends()
    assert await database_sync_to_async(AuthToken.objects.filter(user=doctor.user).count)() == 0


@pytest.mark.asyncio
async def test_it_ends_the_sessions_of_every_doctor_whose_skills_are_cleared_from_the_skills_side(
    devices: Open, doctor: Professional, case: Case, respiratory: Skill
) -> None:
    [queue] = await devices(doctor.user, QUEUE_PATH, "app")

    await database_sync_to_async(respiratory.professionals.clear)()

    await queue.ends()


@pytest.mark.asyncio
async def test_it_ends_a_professionals_sessions_when_their_kind_changes(
    devices: Open, doctor: Professional, case: Case
) -> None:
    [queue] = await devices(doctor.user, QUEUE_PATH, "app")

    def rekind() -> None:
        professional = Professional.objects.get(pk=doctor.pk)
        professional.kind = Kind.LEGAL
        professional.save()

    await database_sync_to_async(rekind)()

    await queue.ends()


@pytest.mark.asyncio
async def test_it_leaves_a_doctor_signed_in_when_a_skill_is_added_or_their_duty_changes(
    devices: Open, doctor: Professional, case: Case, skill_factory: Any
) -> None:
    app, browser = await devices(doctor.user, room_path(case.reference), "app", "browser")
    cardiology: Skill = await database_sync_to_async(skill_factory)(code="cardiology", name_zh="心内科")

    def widen() -> None:
        professional = Professional.objects.get(pk=doctor.pk)
        professional.skills.add(cardiology)
        professional.on_duty = False
        professional.capacity = 9
        professional.save()

    await database_sync_to_async(widen)()

    await app.stays("app")
    await browser.stays("browser")


# --- a staff member's second factor -------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_ends_everything_when_a_coordinator_resets_a_doctors_authenticator_in_the_admin(
    devices: Open, doctor: Professional, coordinator: User, case: Case
) -> None:
    ended = [
        *await devices(doctor.user, room_path(case.reference), "browser", "app"),
        *await devices(doctor.user, QUEUE_PATH, "app"),
    ]

    def reset() -> Any:
        admin = Client()
        admin.force_login(coordinator)
        device = second_factor_device(doctor.user)
        return admin.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})

    response = await database_sync_to_async(reset)()
    assert response.status_code == 302, response.content

    for each in ended:
        await each.ends()
    assert await database_sync_to_async(AuthToken.objects.filter(user=doctor.user).count)() == 0


@pytest.mark.asyncio
async def test_it_ends_the_other_sessions_tokens_and_sockets_when_a_new_authenticator_replaces_the_old(
    devices: Open, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    here, there, app = await devices(doctor.user, room, "browser", "browser", "app")
    assert here.client is not None
    client = here.client

    def enrol() -> Any:
        assert client.get(reverse("staff:enrol")).status_code == 200
        pending = TOTPDevice.objects.get(user=doctor.user, confirmed=False)
        return client.post(reverse("staff:enrol"), {"code": code_now(pending)})

    response = await database_sync_to_async(enrol)()
    assert response.status_code == 302 and response["Location"].startswith(reverse("staff:recovery"))

    await there.ends()
    await app.ends()
    # The browser the new authenticator was confirmed in stays signed in, its pages connected.
    await here.stays("here")


@pytest.mark.asyncio
async def test_it_ends_the_other_sessions_tokens_and_sockets_when_the_recovery_codes_are_renewed(
    devices: Open, doctor: Professional, case: Case
) -> None:
    room = room_path(case.reference)
    here, there, app = await devices(doctor.user, room, "browser", "browser", "app")
    assert here.client is not None
    client = here.client

    def renew() -> Any:
        recovery_code(doctor.user)  # an earlier set, as after enrolling
        return client.post(reverse("staff:recovery"))

    response = await database_sync_to_async(renew)()
    assert response.status_code == 302

    await there.ends()
    await app.ends()
    await here.stays("here")
    assert "demo" not in (await database_sync_to_async(client.get)(reverse("staff:recovery"))).content.decode()

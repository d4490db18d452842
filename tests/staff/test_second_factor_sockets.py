"""A staff session that has not given its code opens no socket: the case room and the queue feed
refuse it as they refuse a visitor; once the code is given, both open."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from consult.models import Case, User
from tests.conftest import unverified_login
from tests.realtime.conftest import TIMEOUT, socket_for


def cookie(user: User, verified: bool) -> str:
    client = Client()
    if verified:
        client.force_login(user)
    else:
        unverified_login(client, user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["case", "queue"])
async def test_it_opens_sockets_to_staff_only_once_the_second_factor_is_given(
    path: str, case: Case, coordinator: User
) -> None:
    url = f"/ws/cases/{case.reference}/" if path == "case" else "/ws/queue/"
    results: dict[bool, Any] = {}
    for verified in (False, True):
        socket = socket_for(url, await database_sync_to_async(cookie)(coordinator, verified))
        accepted, _detail = await socket.connect(timeout=TIMEOUT)
        results[verified] = accepted
        await socket.disconnect()

    assert results == {False: False, True: True}

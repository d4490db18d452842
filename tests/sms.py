"""The one-time codes sent by SMS, as a test reads them: the `sms` fixture (registered in
tests/conftest.py, so every test package can sign a resident up or log one in by code).

Codes are read from the SMS test backend's outbox (`notices.outbox`, filled by the locmem backend
the `sms_outbox` fixture switches on), so a code a test uses is one that really went out as an
SMS. A code is sent after its transaction commits; a test's own transaction never does, so what a
commit would run is run when the test looks."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection


class Sms:
    """The codes sent so far, oldest first, per number."""

    def __init__(self, outbox: list[Any]) -> None:
        self.outbox = outbox
        self._ran: list[Any] = []

    def _commit(self) -> None:
        # Django's captureOnCommitCallbacks(execute=True) does the same at the end of its block;
        # callbacks may queue more (a job queuing another), hence the loop.
        while True:
            queued = [entry[1] for entry in connection.run_on_commit]  # (savepoints, callback, robust)
            waiting = [c for c in queued if all(c is not r for r in self._ran)]
            if not waiting:
                return
            for callback in waiting:
                self._ran.append(callback)
                callback()

    def messages(self, phone: str) -> list[Any]:
        from notices.kinds import NoticeKind

        self._commit()
        return [m for m in self.outbox if m.phone == phone and m.kind == NoticeKind.VERIFICATION_CODE]

    def codes(self, phone: str) -> list[str]:
        return [m.params["code"] for m in self.messages(phone)]

    def last(self, phone: str) -> str:
        codes = self.codes(phone)
        assert codes, f"no code was sent to {phone}"
        return codes[-1]

    def languages(self, phone: str) -> list[str]:
        return [m.language for m in self.messages(phone)]


@pytest.fixture
def sms(sms_outbox: list[Any]) -> Sms:
    return Sms(sms_outbox)

"""An SMS backend for tests that fails a set number of times before it sends."""

from __future__ import annotations

import notices
from notices.backends.base import BaseSmsBackend, SmsError, SmsMessage

failures_left = 0
calls = 0


class SmsBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> str:
        global failures_left, calls
        calls += 1
        if failures_left > 0:
            failures_left -= 1
            raise SmsError("provider timed out")
        notices.outbox.append(message)
        return f"flaky-{calls}"

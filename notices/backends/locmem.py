from __future__ import annotations

import uuid

import notices
from notices.backends.base import BaseSmsBackend, SmsMessage


class SmsBackend(BaseSmsBackend):
    """Keeps each message in `notices.outbox` (tests)."""

    def send(self, message: SmsMessage) -> str:
        notices.outbox.append(message)
        return f"locmem-{uuid.uuid4().hex[:12]}"

from __future__ import annotations

import sys
import threading
import uuid
from typing import TextIO

from notices.backends.base import BaseSmsBackend, SmsMessage


class SmsBackend(BaseSmsBackend):
    """Prints each message (`make run`'s default): what the resident would read, and its kind."""

    _lock = threading.Lock()

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, message: SmsMessage) -> str:
        message_id = f"console-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.stream.write(f"SMS to {message.phone} [{message.kind}] {message.text}\n")
            self.stream.flush()
        return message_id

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from notices.backends.base import BaseSmsBackend, SmsMessage


class SmsBackend(BaseSmsBackend):
    """Appends each message as a line of JSON to a file per day under SMS_FILE_PATH."""

    def __init__(self, path: str | None = None) -> None:
        self.directory = Path(path or settings.SMS_FILE_PATH)

    def send(self, message: SmsMessage) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        message_id = f"file-{uuid.uuid4().hex[:12]}"
        line = json.dumps(
            {"id": message_id, "at": timezone.now().isoformat(), "phone": message.phone, "kind": message.kind,
             "params": message.params, "language": message.language, "text": message.text},
            ensure_ascii=False,
        )
        # One write of one line in append mode: lines of concurrent workers do not interleave.
        with (self.directory / f"{timezone.localdate():%Y-%m-%d}.jsonl").open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        return message_id

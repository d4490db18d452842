"""An SMS backend for tests across processes (a real worker): fails the first FLAKY_FAILURES tries,
then appends each message it sends as a line of JSON to FLAKY_DIR/sent; FLAKY_DIR/tries counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from notices.backends.base import BaseSmsBackend, SmsError, SmsMessage


class SmsBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> str:
        directory = Path(os.environ["FLAKY_DIR"])
        with (directory / "tries").open("a") as tries:
            tries.write(f"{message.reference}\n")
        tried = len((directory / "tries").read_text().split())
        if tried <= int(os.environ.get("FLAKY_FAILURES", "0")):
            raise SmsError(f"provider timed out (try {tried})")
        with (directory / "sent").open("a") as sent:
            sent.write(json.dumps({"phone": message.phone, "kind": message.kind, "params": message.params}) + "\n")
        return f"flaky-{tried}"

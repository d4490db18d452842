from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consult.services.idempotency import idempotency_purge


class Command(BaseCommand):
    help = "Forget the one-time keys of forms and API calls (Idempotency-Key) older than a number of hours."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hours", type=int, default=48,
            help="Keep keys this long: a resend or retry within it still gets the first answer.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        removed = idempotency_purge(older_than=timedelta(hours=max(options["hours"], 1)))
        self.stdout.write(f"{removed} key(s) removed")

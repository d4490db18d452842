from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from consult.services import case_sweep_unaccepted
from consult.services.cases import cases_fill_free_slots
from consult.services.messages import connections_purge


class Command(BaseCommand):
    help = (
        "Put cases that were assigned but not accepted in time back to matching, give waiting cases "
        "to professionals on duty with a free slot, and forget the "
        "presence of sockets whose server died without saying goodbye."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes", type=int, default=settings.ACCEPT_TIMEOUT_MINUTES,
            help="How long an assigned case may wait for acceptance.",
        )
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until stopped.")
        parser.add_argument("--interval", type=int, default=60, help="Seconds between sweeps with --loop.")

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = timedelta(minutes=options["minutes"])
        while True:
            swept = case_sweep_unaccepted(timeout=timeout)
            self.stdout.write(f"{swept} case(s) put back to matching")
            self.stdout.write(f"{cases_fill_free_slots()} waiting case(s) given to a free slot")
            self.stdout.write(f"{connections_purge()} dead connection(s) forgotten")
            if not options["loop"]:
                return
            time.sleep(options["interval"])

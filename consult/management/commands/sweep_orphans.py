from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consult.services import documents_sweep_orphans
from consult.services.documents import documents_sweep_staging


class Command(BaseCommand):
    help = (
        "Remove document rows whose file is gone, stored files that no document row points at, and files "
        "parked by intake forms more than a day ago."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes", type=int, default=60,
            help="Leave files younger than this alone (uploads in flight).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows, objects = documents_sweep_orphans(grace=timedelta(minutes=options["grace_minutes"]))
        self.stdout.write(f"{rows} row(s) without a file removed, {objects} file(s) without a row removed")
        self.stdout.write(f"{documents_sweep_staging()} parked intake file(s) removed")

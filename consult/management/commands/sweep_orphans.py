from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consult.services import documents_sweep_orphans


class Command(BaseCommand):
    help = "Remove document rows whose file is gone, and stored files that no document row points at."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes", type=int, default=60,
            help="Leave files younger than this alone (uploads in flight).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows, objects = documents_sweep_orphans(grace=timedelta(minutes=options["grace_minutes"]))
        self.stdout.write(f"{rows} row(s) without a file removed, {objects} file(s) without a row removed")

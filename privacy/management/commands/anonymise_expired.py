from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from privacy.anonymise import anonymise_expired, retention_cutoff


class Command(BaseCommand):
    help = (
        "Anonymise closed and withdrawn cases ended more than PRIVACY_RETENTION_DAYS ago: personal details, "
        "chat lines and files removed, the figures' skeleton and the audit trail kept. What the daily job does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Say what would be removed; change nothing.")
        parser.add_argument("--limit", type=int, default=None, help="At most this many cases.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.PRIVACY_RETENTION_DAYS
        if days <= 0:
            self.stdout.write("PRIVACY_RETENTION_DAYS is 0: cases are kept, nothing to do")
            return
        dry = options["dry_run"]
        done = anonymise_expired(dry_run=dry, limit=options["limit"])
        verb = "would anonymise" if dry else "anonymised"
        for line in done:
            self.stdout.write(
                f"{line.reference}: {verb} ({line.messages} chat line(s) emptied, {line.files} file(s) deleted)"
                + "".join(f"; not deleted, next run tries again: {p}" for p in line.problems)
            )
        self.stdout.write(
            f"{len(done)} case(s) ended before {retention_cutoff():%Y-%m-%d %H:%M} ({days} days) {verb}"
            + (" (dry run: nothing changed)" if dry else "")
        )

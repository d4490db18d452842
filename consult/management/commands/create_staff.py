from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from consult import services
from consult.models import Role, Skill, User


class Command(BaseCommand):
    help = "Create a doctor, lawyer or coordinator account (the password is asked, or read from STAFF_PASSWORD)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=[Role.DOCTOR, Role.LAWYER, Role.COORDINATOR])
        parser.add_argument("--phone", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--organisation", default="")
        parser.add_argument("--city", default="")
        parser.add_argument("--skills", default="", help="Comma-separated service codes.")
        parser.add_argument("--capacity", type=int, default=5)
        parser.add_argument("--on-duty", action="store_true")
        parser.add_argument(
            "--domains", default="", help="A coordinator's kinds of case, comma-separated (medical, legal)."
        )
        parser.add_argument("--platform-wide", action="store_true", help="A coordinator of every domain.")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("STAFF_PASSWORD") or getpass.getpass("Password: ")
        try:
            password_validation.validate_password(password, User(phone=options["phone"], name=options["name"]))
        except ValidationError as error:
            raise CommandError("password: " + " ".join(error.messages)) from None
        try:
            if options["role"] == Role.COORDINATOR:
                domains = [d.strip() for d in options["domains"].split(",") if d.strip()]
                if not domains and not options["platform_wide"]:
                    raise CommandError("a coordinator needs --domains (medical, legal) or --platform-wide")
                user = services.coordinator_create(
                    phone=options["phone"], name=options["name"], password=password, domains=domains,
                    platform_wide=options["platform_wide"],
                )
                self.stdout.write(f"coordinator {user.phone} created")
                return
            codes = [c.strip() for c in options["skills"].split(",") if c.strip()]
            skills = list(Skill.objects.filter(code__in=codes))
            missing = set(codes) - {s.code for s in skills}
            if missing:
                raise CommandError(f"unknown service codes: {', '.join(sorted(missing))}")
            professional = services.professional_create(
                phone=options["phone"],
                name=options["name"],
                role=options["role"],
                password=password,
                organisation=options["organisation"],
                city=options["city"],
                skills=skills,
                capacity=options["capacity"],
                on_duty=options["on_duty"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(f"{options['role']} {professional.user.phone} created")

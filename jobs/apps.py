from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = _("Background jobs")

    def ready(self) -> None:
        # After every migrate (and every test flush), so a fresh database gets its periodic jobs.
        post_migrate.connect(_install_schedule, sender=self)


def _install_schedule(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    from jobs.schedule import schedule_install

    schedule_install(using=using)

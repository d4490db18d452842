from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = _("Personal information")

    def ready(self) -> None:
        from privacy import tasks  # noqa: F401 - its jobs registered wherever they are queued or scheduled

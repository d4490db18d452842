from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


class NoticesConfig(AppConfig):
    name = "notices"
    verbose_name = _("Notices")

    def ready(self) -> None:
        # Every process (daphne, worker, beat, manage.py) refuses to start with a provider chosen
        # but not configured, rather than failing on the first notice hours later.
        from django.conf import settings
        from django.utils.module_loading import import_string

        from notices import tasks  # noqa: F401 - its jobs registered wherever they are queued or scheduled

        backend = import_string(settings.SMS_BACKEND)
        errors = backend.configuration_errors()
        if errors:
            raise ImproperlyConfigured(f"SMS_BACKEND {settings.SMS_BACKEND}: " + "; ".join(errors))

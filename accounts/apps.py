from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Phone-verified accounts")

    def ready(self) -> None:
        from accounts import signals, tasks  # noqa: F401 - receivers connected; its job registered wherever it is scheduled

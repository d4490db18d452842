from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LegalConfig(AppConfig):
    name = "legal"
    verbose_name = _("Legal aid")

    def ready(self) -> None:
        from consult.domains import Domain, register
        from consult.models import Kind
        from legal import api, views

        register(
            Domain(
                kind=Kind.LEGAL,
                intake_view=views.intake_view,
                resolve_blocker=views.resolve_blocker,
                summary=views.summary,
                case_context=views.case_context,
                case_template="legal/_case.html",
                summary_title=_("Mediation record"),
                figures=views.figures,
                api_data=api.api_data,
            )
        )

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MedicalConfig(AppConfig):
    name = "medical"
    verbose_name = _("Medical consultations")

    def ready(self) -> None:
        from consult.domains import Domain, register
        from consult.models import Kind
        from medical import api, views

        register(
            Domain(
                kind=Kind.MEDICAL,
                intake_view=views.intake_view,
                resolve_blocker=views.resolve_blocker,
                summary=views.summary,
                case_context=views.case_context,
                case_template="medical/_case.html",
                summary_title=_("Consultation summary"),
                figures=views.figures,
                api_data=api.api_data,
            )
        )

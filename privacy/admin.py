from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Max, QuerySet
from django.http import HttpRequest

from consult.admin import ReadOnly, _coordinated
from privacy.models import PURPOSE_OF_KIND, Consent, ConsentText, ErasureRequest


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin[ConsentText]):
    """A new wording is added as a new version; a published one is never edited or deleted (the
    consents given to it must keep naming the words that were read)."""

    list_display = ("purpose", "version", "title_zh", "published_at")
    list_filter = ("purpose",)
    readonly_fields = ("version",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return [f.name for f in ConsentText._meta.fields]
        return ("version",)

    def save_model(self, request: HttpRequest, obj: ConsentText, form: Any, change: bool) -> None:
        if not change:
            latest = ConsentText.objects.filter(purpose=obj.purpose).aggregate(v=Max("version"))["v"] or 0
            obj.version = latest + 1
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Consent)
class ConsentAdmin(ReadOnly, admin.ModelAdmin[Consent]):
    list_display = ("case", "purpose", "text", "given_by", "given_at", "language", "channel")
    list_filter = ("purpose", "channel", "language")
    search_fields = ("case__reference",)
    list_select_related = ("case", "text", "given_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Consent]:
        # A coordinator reads the consents of their domains' cases only, as the cases themselves.
        kinds = _coordinated(request)
        purposes = [PURPOSE_OF_KIND[k] for k in PURPOSE_OF_KIND if k in kinds]
        return super().get_queryset(request).filter(case__kind__in=kinds, purpose__in=purposes)


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnly, admin.ModelAdmin[ErasureRequest]):
    """Read only: requests are answered on the coordinators' page (/privacy/erasure/), where the
    answer reaches the resident."""

    list_display = ("case", "status", "requested_by", "created_at", "decided_by", "decided_at")
    list_filter = ("status",)
    search_fields = ("case__reference",)
    list_select_related = ("case", "requested_by", "decided_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ErasureRequest]:
        return super().get_queryset(request).filter(case__kind__in=_coordinated(request))

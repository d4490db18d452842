from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import CodeQuota, PhoneCode


@admin.register(PhoneCode)
class PhoneCodeAdmin(admin.ModelAdmin[PhoneCode]):
    """What was sent, when and from where, for a coordinator helping someone on the phone; the
    code itself is never shown (only its hash is kept)."""

    list_display = ("phone", "purpose", "created_at", "expires_at", "tries", "used_at", "client_address")
    list_filter = ("purpose",)
    search_fields = ("phone", "client_address")
    fields = ("phone", "purpose", "user", "client_address", "created_at", "expires_at", "tries", "used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PhoneCode | None = None) -> bool:
        return False


@admin.register(CodeQuota)
class CodeQuotaAdmin(admin.ModelAdmin[CodeQuota]):
    """A day's count per number or address; deleting a row lets that number (or network) ask
    again today."""

    list_display = ("scope", "day", "sent", "last_sent_at")
    search_fields = ("scope",)
    readonly_fields = ("scope", "day", "sent", "last_sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

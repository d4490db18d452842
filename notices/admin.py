from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from consult.models import User
from notices.models import Notice, NoticePreference, NoticeStatus
from notices.services import notice_requeue


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "channel", "address", "user", "status", "attempts", "sent_at", "case"]
    list_filter = ["status", "channel", "kind", "urgent"]
    search_fields = ["address", "user__name", "user__phone", "provider_message_id", "case__reference"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "case"]
    readonly_fields = [f.name for f in Notice._meta.fields] + ["text"]
    actions = ["send_again"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notice]:
        # A notice about a case says its reference, its professional and a link: shown to the
        # coordinators of the case's domain only (selectors.visible_cases). Notices of no case
        # (sign-in codes, the coordinators' own digests) belong to no domain.
        user = request.user
        kinds = sorted(user.coordinated_kinds) if isinstance(user, User) else []
        return super().get_queryset(request).filter(Q(case__isnull=True) | Q(case__kind__in=kinds))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("text"))
    def text(self, notice: Notice) -> str:
        return notice.text

    @admin.action(description=_("Send the selected failed notices again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[Notice]) -> None:
        count = sum(notice_requeue(notice=n) for n in queryset.filter(status=NoticeStatus.FAILED))
        self.message_user(
            request,
            ngettext("%(count)d notice queued again.", "%(count)d notices queued again.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(NoticePreference)
class NoticePreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "channel", "opted_out"]
    list_filter = ["channel", "opted_out"]
    search_fields = ["user__name", "user__phone"]
    raw_id_fields = ["user"]

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from jobs.models import JobFailure
from jobs.selectors import job_failures_visible


@admin.register(JobFailure)
class JobFailureAdmin(admin.ModelAdmin[JobFailure]):
    list_display = ("task", "attempts", "first_failed_at", "last_failed_at", "resolved")
    list_filter = ("resolved", "task")
    search_fields = ("task", "args", "error")
    readonly_fields = ("task", "args", "error", "attempts", "first_failed_at", "last_failed_at")
    actions = ("mark_resolved",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobFailure]:
        return job_failures_visible(request.user, super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Mark as resolved"))
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[JobFailure]) -> None:
        count = queryset.filter(resolved=False).update(resolved=True)
        self.message_user(
            request,
            ngettext("%(count)d failed job marked as resolved.", "%(count)d failed jobs marked as resolved.", count)
            % {"count": count},
            messages.SUCCESS,
        )

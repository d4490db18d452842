from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from consult import services
from consult.errors import CaseError
from consult.models import Case, CaseEvent, Document, Professional, Skill, User
from consult.services.reads import case_read_record


class PhoneUserCreationForm(UserCreationForm[User]):
    class Meta:
        model = User
        fields = ("phone", "name", "role")


class ProfessionalInline(admin.StackedInline[Professional, User]):
    model = Professional
    can_delete = False
    filter_horizontal = ("skills",)
    extra = 0


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, BaseUserAdmin):
    add_form = PhoneUserCreationForm
    ordering = ("phone",)
    list_display = ("phone", "name", "role", "is_active", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("phone", "name", "email")
    inlines = (ProfessionalInline,)
    fieldsets = (
        (None, {"fields": ("phone", "name", "role", "email", "password")}),
        (_("Coordinator"), {"fields": ("domains", "platform_wide")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("phone", "name", "role", "password1", "password2")}),)


@admin.register(Skill)
class SkillAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name_zh", "name_en", "kind", "office_phone", "response_hours", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name_zh", "name_en", "office_zh", "office_en")
    ordering = ("kind", "position", "code")


@admin.register(Professional)
class ProfessionalAdmin(SimpleHistoryAdmin):
    list_display = ("user", "kind", "organisation", "city", "capacity", "on_duty", "last_assigned_at")
    list_filter = ("kind", "on_duty", "city", "organisation", "skills")
    search_fields = ("user__name", "user__phone", "organisation", "city")
    filter_horizontal = ("skills",)
    list_select_related = ("user",)


class CaseEventInline(admin.TabularInline[CaseEvent, Case]):
    model = CaseEvent
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "actor", "verb", "detail")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _coordinated(request: HttpRequest) -> list[str]:
    """The kinds of case the admin user may see: the rule of the pages (selectors.visible_cases)."""
    user = request.user
    return sorted(user.coordinated_kinds) if isinstance(user, User) else []


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin[Case]):
    list_display = ("reference", "kind", "skill", "status", "priority", "resident", "assignee", "created_at")
    list_filter = ("kind", "status", "priority", "skill")
    search_fields = ("reference", "resident__name", "resident__phone", "description")
    list_select_related = ("skill", "resident", "assignee__user")
    date_hierarchy = "created_at"
    inlines = (CaseEventInline,)
    actions = ("close_resolved",)
    # Status, assignee and timestamps change only through the services (case page, commands).
    readonly_fields = (
        "reference", "kind", "status", "assignee", "declined_by", "created_at", "submitted_at", "waiting_at",
        "assigned_at", "accepted_at", "first_response_at", "resolved_at", "closed_at", "withdrawn_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        return super().get_queryset(request).filter(kind__in=_coordinated(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Case | None:
        # Opening a case here is a staff read like on its page: on its timeline for the resident.
        case = super().get_object(request, object_id, from_field)
        if case is not None and isinstance(request.user, User):
            case_read_record(case=case, user=request.user)
        return case

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A case and its trail are never deleted (closed or withdrawn is the end).
        return False

    @admin.action(description=_("Close the selected resolved cases"))
    def close_resolved(self, request: HttpRequest, queryset: QuerySet[Case]) -> None:
        closed = 0
        assert isinstance(request.user, User)
        for case in queryset:
            try:
                services.case_close(case=case, user=request.user)
                closed += 1
            except CaseError as error:
                self.message_user(request, f"{case.reference}: {' '.join(error.messages)}", messages.WARNING)
        self.message_user(request, ngettext("%(n)d case closed.", "%(n)d cases closed.", closed) % {"n": closed})


class ReadOnly:
    """An admin that shows and never writes: what it lists is a record (an audit, a consent)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnly, admin.ModelAdmin[CaseEvent]):
    list_display = ("created_at", "case", "verb", "actor")
    list_filter = ("verb",)
    search_fields = ("case__reference",)
    list_select_related = ("case", "actor")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseEvent]:
        return super().get_queryset(request).filter(case__kind__in=_coordinated(request))


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin[Document]):
    """Metadata only: the bytes are opened through the case page, which checks access and records it."""

    list_display = ("original_name", "case", "kind", "content_type", "size", "uploader", "created_at")
    list_filter = ("kind", "content_type")
    search_fields = ("original_name", "case__reference", "sha256")
    list_select_related = ("case", "uploader")
    readonly_fields = (
        "case", "uploader", "storage_key", "original_name", "content_type", "size", "sha256", "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).filter(case__kind__in=_coordinated(request))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

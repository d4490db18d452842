from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from medical.models import ConsultationNote, DoctorProfile, HomeVisit, MedicalIntake


@admin.register(MedicalIntake)
class MedicalIntakeAdmin(admin.ModelAdmin[MedicalIntake]):
    list_display = ("case", "patient_name", "patient_age", "patient_sex", "on_behalf", "health_consent_at")
    list_filter = ("patient_sex", "on_behalf")
    search_fields = ("case__reference", "patient_name")
    list_select_related = ("case",)
    readonly_fields = ("case", "health_consent_at")


@admin.register(DoctorProfile)
class DoctorProfileAdmin(SimpleHistoryAdmin):
    list_display = ("professional", "department", "title")
    list_filter = ("department", "title")
    search_fields = ("professional__user__name", "department")
    list_select_related = ("professional__user",)


@admin.register(ConsultationNote)
class ConsultationNoteAdmin(admin.ModelAdmin[ConsultationNote]):
    list_display = ("case", "author", "urgency", "version", "updated_at")
    list_filter = ("urgency",)
    search_fields = ("case__reference",)
    list_select_related = ("case", "author__user")
    # Notes are written by the assigned doctor on the case page, where every version is recorded.
    readonly_fields = (
        "case", "author", "findings", "impression", "advice", "recommended_tests", "urgency", "follow_up_date",
        "referral_hospital", "referral_department", "version", "updated_at",
    )


@admin.register(HomeVisit)
class HomeVisitAdmin(admin.ModelAdmin[HomeVisit]):
    list_display = ("case", "status", "scheduled_for", "address", "created_at")
    list_filter = ("status",)
    search_fields = ("case__reference", "address")
    list_select_related = ("case",)
    readonly_fields = ("case", "requested_by", "created_at", "updated_at")

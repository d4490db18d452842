from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from legal.models import (
    CityRates,
    ClaimEstimate,
    EmployerContact,
    LawyerProfile,
    LegalAidFund,
    LegalIntake,
    MediationOutcome,
    MediationSession,
    WorkLog,
)


@admin.register(CityRates)
class CityRatesAdmin(SimpleHistoryAdmin):
    list_display = ("city", "effective_from", "minimum_wage", "average_wage", "sick_pay_floor_percent")
    list_filter = ("city",)


@admin.register(LegalIntake)
class LegalIntakeAdmin(admin.ModelAdmin[LegalIntake]):
    list_display = ("case", "employer_name", "monthly_wage", "amount_received", "amount_claimed", "city")
    list_filter = ("city",)
    search_fields = ("case__reference", "employer_name")
    list_select_related = ("case",)
    readonly_fields = ("case", "share_consent_at")


@admin.register(ClaimEstimate)
class ClaimEstimateAdmin(admin.ModelAdmin[ClaimEstimate]):
    list_display = ("case", "rule", "entitled", "owed", "computed_at")
    list_filter = ("rule",)
    search_fields = ("case__reference",)
    readonly_fields = ("case", "rule", "rates", "entitled", "owed", "steps", "computed_at")


@admin.register(LawyerProfile)
class LawyerProfileAdmin(SimpleHistoryAdmin):
    list_display = ("professional", "union", "firm")
    search_fields = ("professional__user__name", "union", "firm")
    list_select_related = ("professional__user",)


@admin.register(LegalAidFund)
class LegalAidFundAdmin(SimpleHistoryAdmin):
    list_display = ("name", "hourly_rate")


@admin.register(WorkLog)
class WorkLogAdmin(admin.ModelAdmin[WorkLog]):
    list_display = ("case", "lawyer", "date", "hours", "cost", "fund")
    list_filter = ("fund", "date")
    search_fields = ("case__reference",)
    list_select_related = ("case", "lawyer__user", "fund")


@admin.register(EmployerContact)
class EmployerContactAdmin(admin.ModelAdmin[EmployerContact]):
    list_display = ("case", "date", "channel")
    list_filter = ("channel",)
    search_fields = ("case__reference",)


@admin.register(MediationSession)
class MediationSessionAdmin(admin.ModelAdmin[MediationSession]):
    list_display = ("case", "date", "mode", "attendees")
    list_filter = ("mode",)
    search_fields = ("case__reference",)


@admin.register(MediationOutcome)
class MediationOutcomeAdmin(admin.ModelAdmin[MediationOutcome]):
    list_display = ("case", "result", "amount_agreed", "payment_due", "amount_received", "recorded_at")
    list_filter = ("result",)
    search_fields = ("case__reference",)

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpRequest


class VerifiedAdminSite(AdminSite):
    """The admin for staff who proved their second factor in this session (as django-otp's
    OTPAdminSite, keeping the site's own log-in: the code is asked on its own page after it)."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and bool(getattr(request.user, "is_verified", lambda: False)())

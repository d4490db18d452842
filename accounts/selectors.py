from __future__ import annotations

from django.urls import reverse

from consult.models import Case, Professional, User


def landing_url(*, user: User) -> str:
    """Where a log-in with no `next` lands: a professional on the queue, a coordinator on the
    dashboard (their work, not the residents' catalogue), a resident on their cases if they have
    any, else on the catalogue to open one."""
    if user.is_professional and Professional.objects.filter(user=user).exists():
        return reverse("work_queue")
    if user.is_coordinator:
        return reverse("dashboard")
    if user.is_resident and Case.objects.filter(resident=user).exists():
        return reverse("my_cases")
    return reverse("home")

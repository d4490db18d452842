"""Accounts: residents sign up; coordinators create doctors, lawyers and coordinators."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from consult.errors import CaseError
from consult.models import (
    ROLE_KIND,
    Case,
    Professional,
    Role,
    Skill,
    User,
)
from consult.services.cases import case_fill
from realtime.events import queue_changed, queue_group, send_event_on_commit

# --- accounts -----------------------------------------------------------------------------


@transaction.atomic
def resident_signup(*, phone: str, name: str, password: str, language: str = settings.LANGUAGE_CODE) -> User:
    return User.objects.create_user(phone=phone, password=password, name=name, role=Role.RESIDENT, language=language)


@transaction.atomic
def professional_create(
    *,
    phone: str,
    name: str,
    role: str,
    password: str,
    organisation: str,
    city: str,
    skills: Iterable[Skill] = (),
    capacity: int = 5,
    on_duty: bool = False,
) -> Professional:
    """Create a doctor's or lawyer's account with its working profile."""
    kind = ROLE_KIND.get(Role(role))
    if kind is None:
        raise CaseError(_("A professional is a doctor or a lawyer."))
    skills = list(skills)
    wrong = [s.code for s in skills if s.kind != kind]
    if wrong:
        raise CaseError(
            _("These services are not of this professional's kind: %(codes)s") % {"codes": ", ".join(wrong)}
        )
    user = User.objects.create_user(phone=phone, password=password, name=name, role=role)
    professional = Professional(
        user=user, kind=kind, organisation=organisation, city=city, capacity=capacity, on_duty=on_duty
    )
    professional.full_clean()
    professional.save()
    professional.skills.set(skills)
    return professional


@transaction.atomic
def coordinator_create(
    *, phone: str, name: str, password: str, domains: Iterable[str] = (), platform_wide: bool = False
) -> User:
    """A coordinator of an organisation's domains (`domains`: kinds of case), or of every domain."""
    return User.objects.create_user(
        phone=phone, password=password, name=name, role=Role.COORDINATOR, is_staff=True,
        domains=sorted(set(domains)), platform_wide=platform_wide,
    )


@transaction.atomic
def professional_set_on_duty(*, professional: Professional, on_duty: bool) -> list[Case]:
    """Returns the waiting cases given to them as they came on duty, in line order."""
    professional.on_duty = on_duty
    professional.save(update_fields=["on_duty"])
    # The waiting cases go to the one who just came on duty (`case_fill` announces them).
    given = case_fill(professional=professional) if on_duty else []
    for skill_id in professional.skills.values_list("pk", flat=True):
        send_event_on_commit(queue_group(skill_id), queue_changed(skill_id))
    return given

"""The history of what staff edit in the admin: every save of a service, a professional (and their
services), a rate, a fund, a user (role, domains, access) or a group of permissions keeps the row
as it was, who changed it and when (django-simple-history; shown on each admin page's "History").

The history tables live in this app, so the apps whose models they follow keep their own models
and migrations as they were."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models.signals import pre_save
from django.dispatch import receiver
from simple_history import register

from consult.models import Professional, Skill, User
from legal.models import CityRates, LawyerProfile, LegalAidFund
from medical.models import DoctorProfile

register(Skill, app="staff")
register(Professional, app="staff", m2m_fields=["skills"])
register(DoctorProfile, app="staff")
register(LawyerProfile, app="staff")
register(CityRates, app="staff")
register(LegalAidFund, app="staff")
# Not the password hash: its history would be a store of old hashes.
# A display preference (consult/display.py) is no account change an auditor needs.
register(User, app="staff", excluded_fields=["password", "large_text"])
register(Group, app="staff", m2m_fields=["permissions"])


@receiver(pre_save, sender=User)
def _no_history_for_a_login(sender: type[User], instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    # Each log-in saves last_login alone: that is no edit, and would be one history row per log-in.
    login_only = update_fields is not None and set(update_fields) <= {"last_login"}
    if login_only:
        instance.skip_history_when_saving = True  # type: ignore[attr-defined]
        instance._skipped_for_login = True  # type: ignore[attr-defined]
    elif getattr(instance, "_skipped_for_login", False):
        # The same object saved again for a real edit: recorded (simple-history's own skip kept).
        del instance.skip_history_when_saving  # type: ignore[attr-defined]
        del instance._skipped_for_login  # type: ignore[attr-defined]

"""Access that ends whatever path a change takes (accounts/access.py says what ends what)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from accounts import access
from consult.models import Professional, User

# A change to these ends the account's other credentials (the one it was made with stays)...
ENDS_OTHERS = ("password", "phone")
# ...and to these, every one: what the account is, and which cases a coordinator sees.
ENDS_ALL = ("role", "is_staff", "is_superuser", "is_active", "domains", "platform_wide")
WATCHED = ENDS_OTHERS + ENDS_ALL
CHANGES = "_access_changes"
# A professional's profile: what their queue shows and which queue sockets they follow.
KIND_CHANGES = "_access_kind_changes"
# Whose skills a clear is taking away (known only before it).
CLEARED = "_access_skills_cleared"


@receiver(user_logged_out)
def close_the_sessions_sockets(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    # Sent before the session is flushed: its key still names the sockets opened with it.
    credential = access.session_credential(request.session.session_key) if request is not None else None
    if user is not None and credential is not None:
        access.sockets_close(user_id=user.pk, only=credential)


@receiver(post_delete, sender=AuthToken)
def close_the_tokens_sockets(sender: Any, instance: AuthToken, **kwargs: Any) -> None:
    """An API logout, a revocation in the admin, knox's clean-up of an expired token."""
    access.sockets_close(user_id=instance.user_id, only=access.token_credential(instance.digest))


@receiver(pre_save, sender=User)
def note_what_changes(sender: Any, instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    # Saves that touch none of these (a log-in's last_login) cost no read.
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(WATCHED)):
        return
    before = User.objects.filter(pk=instance.pk).values(*WATCHED).first()
    if before is None:
        return
    changes = {field for field in WATCHED if not _same(field, before[field], getattr(instance, field))}
    setattr(instance, CHANGES, changes)


def _same(field: str, before: Any, after: Any) -> bool:
    if field == "domains" and isinstance(before, list) and isinstance(after, list):
        return set(before) == set(after)  # the same domains listed in another order see the same cases
    return bool(before == after)


@receiver(post_save, sender=User)
def end_access_on_change(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    changes: set[str] = instance.__dict__.pop(CHANGES, set())
    if not changes or (changes == {"is_active"} and instance.is_active):
        return  # a reactivation gives back nothing that was ended
    keep = None if changes & set(ENDS_ALL) else access.kept_credential()
    access.access_end(user=instance, keep=keep)


# --- a professional's profile -------------------------------------------------------------------
# What a doctor or lawyer may see hangs on their kind and skills: the waiting cases their queue
# lists and the queue groups their sockets follow (realtime/consumers.py). A new kind or a skill
# taken away ends their sessions, tokens and sockets, so nothing opened under the old profile goes
# on; a skill added, or a change of capacity, duty, city or organisation, narrows nothing.


@receiver(pre_save, sender=Professional)
def note_the_kind(sender: Any, instance: Professional, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and "kind" not in update_fields):
        return
    before = Professional.objects.filter(pk=instance.pk).values_list("kind", flat=True).first()
    setattr(instance, KIND_CHANGES, before is not None and before != instance.kind)


@receiver(post_save, sender=Professional)
def end_access_on_a_new_kind(sender: Any, instance: Professional, created: bool, **kwargs: Any) -> None:
    if instance.__dict__.pop(KIND_CHANGES, False):
        access.access_end(user=instance.user, keep=access.kept_credential())


@receiver(m2m_changed, sender=Professional.skills.through)
def end_access_on_a_skill_taken_away(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action == "pre_clear":
        # pk_set is not given for a clear: who loses a skill is known only before it.
        if reverse:
            instance.__dict__[CLEARED] = list(instance.professionals.values_list("user_id", flat=True))
        else:
            instance.__dict__[CLEARED] = [instance.user_id] if instance.skills.exists() else []
        return
    if action == "post_clear":
        user_ids: list[int] = instance.__dict__.pop(CLEARED, [])
    elif action == "post_remove" and pk_set:
        user_ids = (
            list(Professional.objects.filter(pk__in=pk_set).values_list("user_id", flat=True))
            if reverse
            else [instance.user_id]
        )
    else:
        return
    for user in User.objects.filter(pk__in=user_ids):
        access.access_end(user=user, keep=access.kept_credential())


# --- a staff member's second factor -------------------------------------------------------------
# Sessions, tokens and sockets were let in on the second factor they had: an authenticator deleted
# (a lost phone reset in the admin) or replaced, or the recovery codes renewed (staff/services.py),
# ends them, but for the one the change was made with (`access.keeping`).


@receiver(post_delete, sender=TOTPDevice)
@receiver(post_delete, sender=StaticDevice)
def end_access_on_a_second_factor_removed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.confirmed:
        return  # an enrolment never finished let nobody in
    user = User.objects.filter(pk=instance.user_id).first()
    if user is not None:  # None: the device goes with its deleted user
        access.access_end(user=user, keep=access.kept_credential())

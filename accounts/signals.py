"""Access that ends whatever path a change takes (accounts/access.py says what ends what)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from knox.models import AuthToken

from accounts import access
from consult.models import User

# A change to these ends the account's other credentials (the one it was made with stays)...
ENDS_OTHERS = ("password", "phone")
# ...and to these, every one.
ENDS_ALL = ("role", "is_staff", "is_superuser", "is_active")
WATCHED = ENDS_OTHERS + ENDS_ALL
CHANGES = "_access_changes"


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
    setattr(instance, CHANGES, {field for field in WATCHED if before[field] != getattr(instance, field)})


@receiver(post_save, sender=User)
def end_access_on_change(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    changes: set[str] = instance.__dict__.pop(CHANGES, set())
    if not changes or (changes == {"is_active"} and instance.is_active):
        return  # a reactivation gives back nothing that was ended
    keep = None if changes & set(ENDS_ALL) else access.kept_credential()
    access.access_end(user=instance, keep=keep)

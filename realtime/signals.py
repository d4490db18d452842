"""Close a user's sockets when they log out or are deactivated."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from consult.models import User
from realtime.events import send_event_on_commit, user_group


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        send_event_on_commit(user_group(user.pk), {"type": "user.logout"})


@receiver(post_save, sender=User)
def close_sockets_on_deactivation(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        send_event_on_commit(user_group(instance.pk), {"type": "user.logout"})

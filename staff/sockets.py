from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from realtime.auth import _token
from staff.services import needs_second_factor


def verified_user(scope: dict[str, Any], user: Any) -> Any:
    """The socket's user, or an AnonymousUser for a staff session that has not proved its second
    factor (its pages are all closed to it; so is the chat). A token was given with the second
    factor (the API's log-in), so a token's socket is as proved. Call on a database thread."""
    if not needs_second_factor(user) or _token(scope) is not None:
        return user
    session = scope.get("session")
    device_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(device_id) if device_id else None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return AnonymousUser()
    return user

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class CaseError(ValidationError):
    """A request the case rules refuse; its message is shown to the user as it is."""


class NotAllowed(CaseError):
    """Refused for who asks, whatever they send: the API answers 403 (the pages show the message
    as for any CaseError)."""


class WrongState(CaseError):
    """Refused for the state the case (or the professional) is in now, not for what was sent: the
    API answers 409; the same request may succeed later or after another step."""


class InvalidTransition(WrongState):
    def __init__(self, current: str, target: str) -> None:
        from consult.models import Status

        super().__init__(
            _("A case that is “%(current)s” cannot become “%(target)s”."),
            code="invalid_transition",
            params={"current": Status(current).label, "target": Status(target).label},
        )
        self.current = current
        self.target = target


class CaseConflict(WrongState):
    def __init__(self) -> None:
        super().__init__(
            _("Someone else changed this case at the same moment. Please look again."),
            code="conflict",
        )

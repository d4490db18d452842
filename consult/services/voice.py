"""Voice messages: a recording checked by its bytes (consult/files.py check_audio), kept as a
document of the case and posted in its chat as one message."""

from __future__ import annotations

from typing import IO

from django.utils.translation import gettext_lazy as _

from consult import files
from consult.errors import NotAllowed, WrongState
from consult.models import Case, DocumentKind, Message, Status, User
from consult.services.documents import _check_case_room, _keep
from consult.services.messages import is_participant, message_post


def voice_message_post(
    *, case: Case, sender: User, upload: IO[bytes], name: str, client_id: str = ""
) -> tuple[Message, bool]:
    """Check a recording, keep it privately on the case and post it in the chat. Returns the
    message and whether it is new: a retried upload with the same client id gets the first one
    back before anything is read again. Raises UploadRefused (the reason for the user),
    NotAllowed, WrongState, CaseError or StorageUnavailable (nothing was kept)."""
    if case.status in (Status.CLOSED, Status.WITHDRAWN):
        raise WrongState(_("This case is finished; the chat is closed."))
    if not is_participant(case, sender):
        raise NotAllowed(_("Only the people on this case can write here."))
    if client_id:
        sent = Message.objects.filter(case=case, sender=sender, client_id=client_id).first()
        if sent is not None:
            return sent, False
    _check_case_room(case, 0)
    checked = files.check_audio(files.receive(upload, name))
    document, _created = _keep(case, sender, checked.file, DocumentKind.VOICE, duration_ms=checked.duration_ms)
    return message_post(case=case, sender=sender, body="", client_id=client_id, document=document)

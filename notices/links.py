"""Short signed links in notices: /n/<token>/ opens the case page (after login).

An SMS is paid by its length, so the token is the case's number in base 62 and 10 characters of
its signature (django.core.signing, salted): not guessable, and not needed to be secret either, since
the case page checks who may see it (case_get_for_user).
"""

from __future__ import annotations

import string

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare

ALPHABET = string.digits + string.ascii_letters
SIGNATURE_LENGTH = 10
_signer = signing.Signer(salt="notices.link")


def _b62(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 62)
        digits = ALPHABET[digit] + digits
        if number == 0:
            return digits


def _from_b62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + ALPHABET.index(char)
    return number


def case_token(case_id: int) -> str:
    value = _b62(case_id)
    return value + _signer.signature(value)[:SIGNATURE_LENGTH]


def case_id_from_token(token: str) -> int | None:
    value, signature = token[:-SIGNATURE_LENGTH], token[-SIGNATURE_LENGTH:]
    if not value or any(c not in ALPHABET for c in value):
        return None
    if not constant_time_compare(signature, _signer.signature(value)[:SIGNATURE_LENGTH]):
        return None
    return _from_b62(value)


def case_link(case_id: int) -> str:
    return settings.SITE_URL + reverse("notice_link", args=[case_token(case_id)])

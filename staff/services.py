"""Staff second factor: an authenticator app (TOTP) and single-use recovery codes, on django-otp's
own devices. Doctors, lawyers, coordinators and admin accounts need one; residents never."""

from __future__ import annotations

from base64 import b32encode

from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import access
from consult.models import Role, User

RECOVERY_CODES = 10
# The device names a user sees in the admin.
AUTHENTICATOR = "authenticator"
RECOVERY = "recovery codes"


def needs_second_factor(user: object) -> bool:
    """Whether a signed-in `user` must prove a second factor before any page (a user that is not a
    User, e.g. AnonymousUser, never does)."""
    if not isinstance(user, User):
        return False
    return user.role != Role.RESIDENT or user.is_staff or user.is_superuser


def confirmed_authenticator(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def has_second_factor(user: User) -> bool:
    """Whether `user` can give a second factor now: a confirmed authenticator, or recovery codes
    left (the demo's staff have only those)."""
    return confirmed_authenticator(user) is not None or recovery_codes_left(user) > 0


def totp_start(*, user: User) -> TOTPDevice:
    """The authenticator being enrolled: the user's unconfirmed one (kept across reloads of the
    enrolment page, so a QR code scanned a minute ago still matches), else a new secret."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if pending is not None:
        return pending
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it typed in (base32, in groups of four)."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@transaction.atomic
def totp_confirm(*, user: User, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the enrolment with a code from the app: the new authenticator replaces any older
    one, and a fresh set of recovery codes is made. Replacing an authenticator ends the other
    sessions, tokens and sockets (accounts/signals.py), as renewed codes do. Returns the codes
    (shown once), or None when the code does not match."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
    if not device.verify_token(_digits(code)):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return recovery_codes_regenerate(user=user)


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """A new set of single-use recovery codes; the old set stops working, and so does whatever was
    let in with the second factor before: every session, token and socket of `user` but the one
    the renewal is made with (`access.keeping`; its view gives it the new auth hash), as after a
    new password. The codes are shown once: django-otp keeps them as they are, so they are never
    displayed again by the site."""
    device, created = StaticDevice.objects.get_or_create(user=user, name=RECOVERY, defaults={"confirmed": True})
    if not created:
        access.access_end(user=user, keep=access.kept_credential())
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def second_factor_check(*, user: User, code: str) -> Device | None:
    """The device that accepts `code` (a 6-digit code from the app, or one recovery code, which it
    uses up), or None. django-otp throttles each device after failures and refuses a TOTP code
    already used."""
    code = code.strip()
    if not code:
        return None
    with transaction.atomic():
        digits = _digits(code)
        if digits.isdigit() and len(digits) == 6:
            for totp in TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True):
                if totp.verify_is_allowed()[0] and totp.verify_token(digits):
                    return totp
        for static in StaticDevice.objects.select_for_update().filter(user=user, confirmed=True):
            if static.verify_is_allowed()[0] and static.verify_token(code.lower().replace(" ", "")):
                return static
    return None


def _digits(code: str) -> str:
    return "".join(code.split()).replace("-", "")

"""Phone-verified accounts: one-time codes sent by SMS, and the flows they confirm (sign-up, log-in
without a password, password reset, a new phone number).

Who learns what. A code asked for a number never says whether that number has an account:
- sign-up with a taken number sends the code anyway, to the number's owner; only whoever holds that
  phone learns, once the code checks, that the account exists (a resident is then logged in to it,
  unchanged);
- log-in and reset for a number without a resident account send nothing, but answer exactly as if
  they had (a row with a code nobody knows keeps the tries and limits identical);
- a new number already taken is refused only once its code checks.
Staff numbers are the exception: doctors, lawyers and coordinators keep passwords, and a code asked
to log them in or reset their password is refused with a message that says so.

Limits: a code is 6 digits, lasts CODE_TTL, takes MAX_TRIES tries; a number gets a new code no
sooner than RESEND_SECONDS after the last, and a number and a client address at most DAILY_CODES
codes a local day, counted by conditional updates (two requests at once never both take the last).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_stubs_ext import StrOrPromise

from accounts.models import CodeQuota, PhoneCode, Purpose
from consult.errors import CaseError
from consult.models import Role, User

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
RESEND_SECONDS = 60
DAILY_CODES = 10

T = TypeVar("T")


class CodeRefused(CaseError):
    """A code that cannot be sent or does not check; the message is shown as it is."""


class CodeLimit(CodeRefused):
    """Too many codes asked for: `retry_after` seconds until the next may be sent."""

    def __init__(self, message: str, *, code: str, retry_after: int) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


STAFF_LOGIN = _("Doctors, lawyers and coordinators log in with their password.")
STAFF_RESET = _("Doctors, lawyers and coordinators: please ask a coordinator to reset your password.")
NO_CODE = _("No code is waiting for this number. Please ask for a new code.")
EXPIRED = _("This code has expired: a code lasts 5 minutes. Please ask for a new code.")
TOO_MANY_TRIES = _("Too many wrong tries for this code. Please ask for a new code.")
WRONG = ngettext_lazy(
    "This code is not right. You can try %(left)d more time.",
    "This code is not right. You can try %(left)d more times.",
    "left",
)
TOO_SOON = _("A code was sent a moment ago. You can ask for another in %(seconds)d seconds.")
DAILY_PHONE = _("This number has had 10 codes today, the most we send in a day. Please try again tomorrow.")
DAILY_ADDRESS = _("Too many codes were asked for from this network today. Please try again tomorrow.")
SAME_PHONE = _("This is already your phone number.")
TAKEN_NEW_PHONE = _("This number already has another account. Your number was not changed.")
TAKEN_STAFF = _("This number already has an account. Please log in with your password.")


def mask(phone: str) -> str:
    """138****5678: enough for the owner to recognise, not enough to read it off a screen."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else phone


def clean_code(raw: str) -> str:
    """The digits typed, whatever the keyboard: full-width digits from a Chinese IME, spaces."""
    return "".join(unicodedata.normalize("NFKC", raw or "").split())


def _new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def _deliver(*, phone: str, code: str, language: str) -> None:
    """Queue the SMS in the caller's transaction; it is sent after commit."""
    from notices.kinds import NoticeKind
    from notices.services import notify

    # Urgent: a code is wanted now, quiet hours or not.
    notify(phone=phone, kind=NoticeKind.VERIFICATION_CODE, params={"code": code}, language=language, urgent=True)


def _seconds_until_tomorrow(now: datetime) -> int:
    local = timezone.localtime(now)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - local).total_seconds()))


def _take_quota(*, phone: str, client_address: str, now: datetime) -> None:
    """Count one code for the number and the address, or raise CodeLimit. Call inside the
    transaction that sends the code: a refusal rolls back both counts."""
    today = timezone.localdate(now)
    phone_scope, address_scope = f"phone:{phone}", f"address:{client_address}"
    CodeQuota.objects.bulk_create(
        [CodeQuota(scope=phone_scope, day=today), CodeQuota(scope=address_scope, day=today)], ignore_conflicts=True
    )
    resend_at = now - timedelta(seconds=RESEND_SECONDS)
    counted = (
        CodeQuota.objects.filter(scope=phone_scope, day=today, sent__lt=DAILY_CODES)
        .filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=resend_at))
        .update(sent=F("sent") + 1, last_sent_at=now)
    )
    if not counted:
        quota = CodeQuota.objects.get(scope=phone_scope, day=today)
        if quota.sent >= DAILY_CODES:
            raise CodeLimit(str(DAILY_PHONE), code="daily_limit", retry_after=_seconds_until_tomorrow(now))
        assert quota.last_sent_at is not None
        wait = max(1, RESEND_SECONDS - int((now - quota.last_sent_at).total_seconds()))
        raise CodeLimit(str(TOO_SOON % {"seconds": wait}), code="too_soon", retry_after=wait)
    counted = CodeQuota.objects.filter(scope=address_scope, day=today, sent__lt=DAILY_CODES).update(
        sent=F("sent") + 1, last_sent_at=now
    )
    if not counted:
        raise CodeLimit(str(DAILY_ADDRESS), code="daily_limit_address", retry_after=_seconds_until_tomorrow(now))


@dataclass(frozen=True)
class CodeSent:
    phone: str
    purpose: str
    resend_after: int
    expires_in: int

    @property
    def masked(self) -> str:
        return mask(self.phone)


def code_send(
    *, phone: str, purpose: str, client_address: str, language: str, user: User | None = None
) -> CodeSent:
    """Send a new code for `purpose` to `phone` (already normalised and validated), or raise
    CodeRefused. `user` is who asks for a new number (purpose change_phone); `language` is the
    page's, used when the number has no account."""
    purpose = Purpose(purpose)
    if purpose == Purpose.CHANGE_PHONE:
        if user is None:
            raise ValueError("a new number is asked for by a signed-in user")
        if user.phone == phone:
            raise CodeRefused(str(SAME_PHONE), code="same_phone")
    account = User.objects.filter(phone=phone).first()
    staff = account is not None and account.role != Role.RESIDENT
    if staff and purpose == Purpose.LOGIN:
        raise CodeRefused(str(STAFF_LOGIN), code="staff_password_only")
    if staff and purpose == Purpose.RESET:
        raise CodeRefused(str(STAFF_RESET), code="staff_password_only")
    # Log-in and reset reach only an active resident; for any other number nothing is sent.
    delivered = purpose in (Purpose.SIGNUP, Purpose.CHANGE_PHONE) or (
        account is not None and account.is_active and not staff
    )
    now = timezone.now()
    code = _new_code() if delivered else secrets.token_hex(16)
    with transaction.atomic():
        _take_quota(phone=phone, client_address=client_address, now=now)
        PhoneCode.objects.create(
            phone=phone,
            purpose=purpose,
            code_hash=make_password(code),
            user=user if purpose == Purpose.CHANGE_PHONE else None,
            client_address=client_address or None,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        if delivered:
            _deliver(phone=phone, code=code, language=account.language if account else language)
    return CodeSent(
        phone=phone, purpose=purpose, resend_after=RESEND_SECONDS, expires_in=int(CODE_TTL.total_seconds())
    )


def _redeem(*, phone: str, purpose: str, code: str, then: Callable[[], T], user: User | None = None) -> T:
    """Check `code` against the newest code of `phone` for `purpose`; when it checks, mark it used
    and return `then()` in the same transaction (if `then` raises, the code stays unused). A wrong
    try is counted even though the call raises: call outside any transaction of your own."""
    failure: CodeRefused
    with transaction.atomic():
        codes = PhoneCode.objects.select_for_update().filter(phone=phone, purpose=purpose)
        if purpose == Purpose.CHANGE_PHONE:
            codes = codes.filter(user=user)
        row = codes.order_by("-created_at", "-pk").first()
        now = timezone.now()
        if row is None or row.used_at is not None:
            failure = CodeRefused(str(NO_CODE), code="no_code")
        elif row.expires_at <= now:
            failure = CodeRefused(str(EXPIRED), code="expired")
        elif row.tries >= MAX_TRIES:
            failure = CodeRefused(str(TOO_MANY_TRIES), code="too_many_tries")
        else:
            row.tries += 1
            if check_password(clean_code(code), row.code_hash):
                row.used_at = now
                row.save(update_fields=["tries", "used_at"])
                return then()
            row.save(update_fields=["tries"])
            left = MAX_TRIES - row.tries
            failure = (
                CodeRefused(str(WRONG % {"left": left}), code="wrong_code")
                if left
                else CodeRefused(str(TOO_MANY_TRIES), code="too_many_tries")
            )
    raise failure


def signup_with_code(
    *, phone: str, code: str, name: str, password_hash: str, language: str
) -> tuple[User, bool]:
    """Create a resident's account once the code sent to `phone` checks. `password_hash` is
    make_password()'s (of a validated password), or "" for an account that logs in by code only.
    Returns the user and whether the account is new: a number that already has a resident's
    account gives that account, unchanged (its owner just proved the number is theirs)."""

    def create() -> tuple[User, bool]:
        existing = User.objects.filter(phone=phone).first()
        if existing is not None:
            if existing.role != Role.RESIDENT or not existing.is_active:
                raise CodeRefused(str(TAKEN_STAFF), code="phone_taken")
            return existing, False
        user = User(phone=phone, name=name, role=Role.RESIDENT, language=language)
        if password_hash:
            user.password = password_hash
        else:
            user.set_unusable_password()
        user.full_clean()
        user.save()
        return user, True

    return _redeem(phone=phone, purpose=Purpose.SIGNUP, code=code, then=create)


def _resident(phone: str, staff_message: StrOrPromise) -> User:
    # The code was sent to a resident; the account may have changed since (a race, an admin).
    user = User.objects.filter(phone=phone, is_active=True).first()
    if user is None:
        raise CodeRefused(str(NO_CODE), code="no_code")
    if user.role != Role.RESIDENT:
        raise CodeRefused(str(staff_message), code="staff_password_only")
    return user


def login_with_code(*, phone: str, code: str) -> User:
    """The resident whose number the code was sent to."""
    return _redeem(phone=phone, purpose=Purpose.LOGIN, code=code, then=lambda: _resident(phone, STAFF_LOGIN))


def password_reset_with_code(*, phone: str, code: str, password: str) -> User:
    """Set a new password (already validated) for the resident the code was sent to."""

    def reset() -> User:
        user = _resident(phone, STAFF_RESET)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    return _redeem(phone=phone, purpose=Purpose.RESET, code=code, then=reset)


def phone_change_with_code(*, user: User, phone: str, code: str) -> User:
    """Give `user` the number `phone` once the code sent to it checks."""

    def change() -> User:
        if User.objects.filter(phone=phone).exclude(pk=user.pk).exists():
            raise CodeRefused(str(TAKEN_NEW_PHONE), code="phone_taken")
        user.phone = phone
        user.full_clean(exclude=["password"])
        user.save(update_fields=["phone"])
        return user

    return _redeem(phone=phone, purpose=Purpose.CHANGE_PHONE, code=code, then=change, user=user)


def codes_purge(*, older_than: timedelta = timedelta(days=2)) -> int:
    """Forget codes and day counts no longer needed (a day's count matters only that day)."""
    cutoff = timezone.now() - older_than
    codes, _kinds = PhoneCode.objects.filter(created_at__lt=cutoff).delete()
    quotas, _kinds = CodeQuota.objects.filter(day__lt=timezone.localdate(cutoff)).delete()
    return codes + quotas

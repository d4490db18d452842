"""The phone flows in the API (mobile and mini-program clients): ask for a code, then trade it for
a token (log-in, sign-up, reset) or a new number. The same forms and services as the pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access, services
from accounts.forms import CodeRequestForm, PhoneCodeForm, ResetCodeForm, SignupCodeForm
from accounts.models import Purpose
from accounts.services import CodeLimit, CodeRefused
from consult import limits
from consult.api.errors import error_response
from consult.api.serializers import TokenSerializer, validate_with
from consult.api.throttles import Limited
from consult.models import User
from consult.net import client_address


def token_response(request: Request, user: User, http_status: int = 200) -> Response:
    """A new token for `user` (stored hashed on our side), as every log-in answers. It is a log-in
    as a page's is (user_logged_in): the last log-in is recorded, and axes forgets this phone's
    failed passwords from this address (accounts/lockout.py)."""
    instance, token = AuthToken.objects.create(user)
    user_logged_in.send(sender=type(user), request=request._request, user=user)
    who = {"name": user.name, "role": user.role, "phone": user.phone}
    return Response({"token": token, "expiry": instance.expiry, "user": who}, status=http_status)


# A code refused for the state of the accounts, not for the code itself: the number is already
# the user's own, or another account's.
CONFLICTS = {"same_phone", "phone_taken"}


def refusal(error: CodeRefused) -> Response:
    """A refused code, with the error's code: 429 with Retry-After for the limits; 409 when the
    number is already in use; else 403 (a wrong, expired or used-up code, or a staff number: well
    formed, but it does not grant what is asked)."""
    message = " ".join(error.messages)
    if isinstance(error, CodeLimit):
        response = error_response(error.code or "limit", message, status.HTTP_429_TOO_MANY_REQUESTS)
        response["Retry-After"] = str(error.retry_after)
        return response
    if error.code in CONFLICTS:
        return error_response(error.code or "conflict", message, status.HTTP_409_CONFLICT)
    return error_response(error.code or "refused", message, status.HTTP_403_FORBIDDEN)


class CodeRequestSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=20)
    purpose = serializers.ChoiceField(choices=Purpose.choices)


class CodeSentSerializer(serializers.Serializer):
    sent_to = serializers.CharField(help_text="The number, masked (138****5678).")
    resend_after = serializers.IntegerField(help_text="Seconds before another code may be asked for.")
    expires_in = serializers.IntegerField(help_text="Seconds the code stays valid.")


class PhoneCodeSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=20)
    code = serializers.CharField(max_length=20)


# The password rules the schema can state (Django's validators in AUTH_PASSWORD_VALIDATORS): at
# least 8 characters, not only digits. Not stated: not a common password, not like the phone number
# or the name (a 400 on the password field).
RULES_TEXT = "At least 8 characters, not only digits, not a common password, not like the phone number or name."


class SignupSerializer(PhoneCodeSerializer):
    name = serializers.RegexField(r"\S", max_length=100)
    password = serializers.CharField(
        max_length=200, required=False, allow_blank=True, style={"input_type": "password"},
        help_text=f"Optional: without one, the resident logs in with codes. {RULES_TEXT}",
    )

    schema_rules = {
        "anyOf": [
            {"properties": {"password": {"maxLength": 0}}},
            {"properties": {"password": {"minLength": 8, "pattern": r"\D"}}},
        ]
    }


class ResetSerializer(PhoneCodeSerializer):
    password = serializers.RegexField(
        r"\D", min_length=8, max_length=200, style={"input_type": "password"}, help_text=RULES_TEXT
    )


class PhoneSerializer(serializers.Serializer):
    phone = serializers.CharField()


def _language() -> str:
    return get_language() or settings.LANGUAGE_CODE


class CodeRequestView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=CodeRequestSerializer, responses={202: CodeSentSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """Send a 6-digit code by SMS, for `signup`, `login` (residents), `reset` (residents) or
        `change_phone` (signed in: the code goes to the new number). A number gets a new code no
        sooner than 60 s after the last, and at most 10 a day, as does a client address (429 with
        Retry-After). Log-in and reset answer the same whether the number has an account or not."""
        data = validate_with(CodeRequestForm, request.data)
        user = request.user if isinstance(request.user, User) else None
        if data["purpose"] == Purpose.CHANGE_PHONE and user is None:
            raise exceptions.NotAuthenticated()
        if data["purpose"] == Purpose.SIGNUP:
            try:
                limits.take("signup", f"address:{client_address(request._request)}")
            except limits.RateLimited as limited:
                raise Limited(limited) from None
        try:
            sent = services.code_send(
                phone=data["phone"], purpose=data["purpose"], client_address=client_address(request._request),
                language=_language(), user=user,
            )
        except CodeRefused as error:
            return refusal(error)
        body = {"sent_to": sent.masked, "resend_after": sent.resend_after, "expires_in": sent.expires_in}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CodeLoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(request=PhoneCodeSerializer, responses={200: TokenSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """A resident's log-in with the code sent for `login`: a token, as with a password."""
        data = validate_with(PhoneCodeForm, request.data)
        try:
            user = services.login_with_code(phone=data["phone"], code=data["code"])
        except CodeRefused as error:
            return refusal(error)
        return token_response(request, user)


class SignupView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=SignupSerializer, responses={201: TokenSerializer, 200: TokenSerializer}, tags=["auth"]
    )
    def post(self, request: Request) -> Response:
        """Create a resident's account with the code sent for `signup`: 201 and a token. A number
        that already has a resident's account gives a token for that account, unchanged (200): the
        code proved the number is theirs."""
        data = validate_with(SignupCodeForm, request.data)
        password = data.get("password") or ""
        try:
            user, created = services.signup_with_code(
                phone=data["phone"], code=data["code"], name=data["name"],
                password_hash=make_password(password) if password else "", language=_language(),
            )
        except CodeRefused as error:
            return refusal(error)
        return token_response(request, user, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PasswordResetView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(request=ResetSerializer, responses={200: TokenSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """A resident's new password, with the code sent for `reset`; answers a token."""
        data = validate_with(ResetCodeForm, request.data)
        try:
            user = services.password_reset_with_code(phone=data["phone"], code=data["code"], password=data["password"])
        except CodeRefused as error:
            return refusal(error)
        return token_response(request, user)


class PhoneChangeView(APIView):
    @extend_schema(request=PhoneCodeSerializer, responses={200: PhoneSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """The signed-in user's new number, with the code sent to it for `change_phone`."""
        data = validate_with(PhoneCodeForm, request.data)
        user = request.user
        assert isinstance(user, User)
        try:
            # The account's other tokens, sessions and sockets end; the credential of this request stays.
            with access.keeping(request):
                services.phone_change_with_code(user=user, phone=data["phone"], code=data["code"])
        except CodeRefused as error:
            return refusal(error)
        if request.auth is None:  # signed in by the session (a page's script): it stays signed in
            update_session_auth_hash(request._request, user)
        return Response({"phone": user.phone})


class LogoutEverywhereView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """End every token, web session and socket of the account, this request's own too (as after
        a stolen phone)."""
        assert isinstance(request.user, User)
        access.access_end(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

"""API v1 views. Each one: parse (serializer or the page's form), `case_get_for_user`, one service."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, logout
from django.http import FileResponse, HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from knox.models import AuthToken
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import token_response
from consult import figures as figures_module
from consult import files, limits, selectors, services
from consult.api import serializers as s
from consult.api.errors import error_response
from consult.api.idempotency import idempotent
from consult.api.throttles import Limited, LoginThrottle, MessageThrottle, UploadThrottle, post_only
from consult.errors import NotAllowed
from consult.forms import ReasonForm, TrackForm
from consult.models import Case, Document, Message, Professional, Skill, User
from consult.net import client_address
from consult.services import messages as chat
from consult.services.reads import case_read_record
from consult.services.voice import voice_message_post
from staff.services import needs_second_factor, second_factor_check

CASE_REF = OpenApiParameter("reference", str, OpenApiParameter.PATH, description="Case reference")


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _case(request: Request, reference: str) -> Case:
    return selectors.case_get_for_user(user=request.user, reference=reference)


def _professional(request: Request) -> Professional:
    professional = Professional.objects.filter(user=_user(request)).select_related("user").first()
    if professional is None:
        raise NotAllowed(_("Only doctors and lawyers have a queue."), code="not_professional")
    return professional


def _detail(request: Request, case: Case, http_status: int = 200) -> Response:
    case = _case(request, case.reference)  # fresh, with its relations
    return Response(s.CaseDetailSerializer(case, context={"request": request}).data, status=http_status)


# --- auth --------------------------------------------------------------------------------


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    # Per address, shared with the login page; the phone and address pair is locked out by axes.
    throttle_classes = [LoginThrottle]

    @extend_schema(request=s.LoginSerializer, responses={200: s.TokenSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """Phone and password in, a token out (stored hashed on our side; send it as
        `Authorization: Token <token>`)."""
        data = s.LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from consult.models import normalize_phone

        user = authenticate(
            request._request,
            phone=normalize_phone(data.validated_data["phone"]),
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            return error_response(
                "invalid_login", _("The phone number or password is not right. Please try again."), 400
            )
        assert isinstance(user, User)
        # Staff get a token only with their second factor, as their web session needs it: a token
        # is then as proved as a verified session (a staff member without an authenticator enrols
        # on the web first).
        code = data.validated_data.get("otp_code", "")
        if needs_second_factor(user) and second_factor_check(user=user, code=code) is None:
            message = _("Staff accounts need the code from their authenticator app (or a recovery code).")
            return error_response("second_factor_required", message, 400, {"otp_code": [message]})
        return token_response(request, user)


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        """Revoke the token this request was made with; a web session is ended instead."""
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- catalogue, tracking, figures (public) -----------------------------------------------


class ServiceListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.SkillSerializer(many=True)}, tags=["public"])
    def get(self, request: Request) -> Response:
        return Response(s.SkillSerializer(Skill.objects.filter(is_active=True), many=True).data)


class TrackView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=s.TrackSerializer, responses={200: s.TrackedSerializer}, tags=["public"])
    def post(self, request: Request) -> Response:
        """Status by reference + the last 4 digits of the phone; a wrong pair and a missing case
        give the same 404. Limited per client address and per reference (429 with Retry-After)."""
        try:
            limits.take("tracking", f"address:{client_address(request._request)}")
            data = s.validate_with(TrackForm, request.data)
            tracked = services.case_track_counted(reference=data["reference"], phone_last4=data["phone_last4"])
        except limits.RateLimited as limited:
            raise Limited(limited) from None
        if tracked is None:
            return error_response("not_found", _("No case matches this reference and phone number."), 404)
        return Response(s.TrackedSerializer(tracked).data)


class FiguresView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.FiguresSerializer}, tags=["public"])
    def get(self, request: Request) -> Response:
        f = figures_module.public_figures()
        seconds = lambda d: int(d.total_seconds()) if d is not None else None  # noqa: E731
        return Response(
            {
                "consultations": f.consultations,
                "disputes": f.disputes,
                "disputes_settled": f.domain.get("disputes_settled", 0),
                "compensation_secured": str(f.domain.get("compensation_secured", "0")),
                "people_served": f.people_served,
                "first_contact_rate": str(f.first_contact_rate) if f.first_contact_rate is not None else None,
                "satisfaction_rate": str(f.satisfaction_rate) if f.satisfaction_rate is not None else None,
                "median_first_response_seconds": seconds(f.median_first_response),
                "median_resolution_seconds": seconds(f.median_resolution),
                "months": [
                    {**m, "month": m["month"].isoformat(), "median_first_response": seconds(m["median_first_response"])}
                    for m in f.months
                ],
                "services": [
                    {
                        "skill": row["skill"].code,
                        "total": row["total"],
                        "resolved": row["resolved"],
                        "median_first_response_seconds": seconds(row["median_first_response"]),
                        "satisfaction_rate": str(row["satisfaction_rate"]) if row["satisfaction_rate"] else None,
                    }
                    for row in f.services
                ],
            }
        )


# --- cases --------------------------------------------------------------------------------


class CaseListView(APIView):
    @extend_schema(responses={200: s.CaseSerializer(many=True)}, tags=["cases"])
    def get(self, request: Request) -> Response:
        """My cases: a resident's own, a professional's assigned, those of a coordinator's domains."""
        cases = selectors.visible_cases(_user(request)).order_by("-created_at")[:200]
        return Response(s.CaseSerializer(cases, many=True).data)


class CaseDetailView(APIView):
    @extend_schema(parameters=[CASE_REF], responses={200: s.CaseDetailSerializer}, tags=["cases"])
    def get(self, request: Request, reference: str) -> Response:
        case = _case(request, reference)
        case_read_record(case=case, user=_user(request))
        return _detail(request, case)


class CaseActionView(APIView):
    """accept, decline, resolve, close, withdraw: the same services as the case page."""

    action_name = ""

    @extend_schema(
        parameters=[CASE_REF], request=s.ReasonSerializer, responses={200: s.CaseDetailSerializer}, tags=["cases"]
    )
    def post(self, request: Request, reference: str) -> Response:
        case = _case(request, reference)
        user = _user(request)
        reason = s.validate_with(ReasonForm, request.data).get("reason", "")
        if self.action_name == "withdraw":
            services.case_withdraw(case=case, resident=user, reason=reason)
        elif self.action_name == "close":
            services.case_close(case=case, user=user)
        else:
            professional = _professional(request)
            action = {
                "accept": lambda: services.case_accept(case=case, professional=professional),
                "decline": lambda: services.case_decline(case=case, professional=professional, reason=reason),
                "resolve": lambda: services.case_resolve(case=case, professional=professional),
            }[self.action_name]
            action()
        if self.action_name == "decline":
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _detail(request, case)


# --- documents ----------------------------------------------------------------------------


class DocumentListView(APIView):
    def get_throttles(self) -> list[Any]:
        return post_only(UploadThrottle, self.request)

    @extend_schema(parameters=[CASE_REF], responses={200: s.DocumentSerializer(many=True)}, tags=["documents"])
    def get(self, request: Request, reference: str) -> Response:
        case = _case(request, reference)
        return Response(s.DocumentSerializer(case.documents.select_related("case"), many=True).data)

    @extend_schema(
        parameters=[CASE_REF, OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request={"multipart/form-data": s.DocumentUploadSerializer},
        responses={201: s.DocumentSerializer, 200: s.DocumentSerializer},
        tags=["documents"],
    )
    @idempotent
    def post(self, request: Request, reference: str) -> Response:
        """Upload one file (checked by its bytes). The same bytes again give the stored document (200)."""
        case = _case(request, reference)
        upload = request.FILES.get("file")
        if upload is None:
            return error_response("invalid", _("Choose a file."), 400, {"file": [_("Choose a file.")]})
        document, created = services.document_add(
            case=case,
            uploader=_user(request),
            upload=upload,
            name=upload.name or "",
            kind=str(request.data.get("kind") or "other"),
        )
        return Response(s.DocumentSerializer(document).data, status=201 if created else 200)


class DocumentDownloadView(APIView):
    @extend_schema(
        parameters=[CASE_REF],
        # The file is sent as the type it was stored as: one of the types uploads accept.
        responses={
            **{(200, kind): OpenApiTypes.BINARY for kind in [*files.ACCEPTED_TYPES, *files.AUDIO_TYPES]},
            302: None,
        },
        tags=["documents"],
    )
    def get(self, request: Request, reference: str, document_id: int) -> Any:
        """The file, after the access check (a redirect to a 5-minute link on object storage)."""
        user = _user(request)
        case = _case(request, reference)
        document: Document = get_object_or_404(case.documents, pk=document_id)
        disposition = content_disposition_header(True, document.original_name) or "attachment"
        if files.storage_is_remote():
            url = files.presigned_url(
                document.storage_key, filename_header=disposition, content_type=document.content_type
            )
            response: Any = HttpResponseRedirect(url)
        else:
            try:
                handle = files.open_stored(document.storage_key)
            except FileNotFoundError:
                return error_response("not_found", _("Not found."), 404)
            response = FileResponse(handle, content_type=document.content_type)
            response["Content-Disposition"] = disposition
        services.document_record_view(document=document, user=user)
        response["X-Content-Type-Options"] = "nosniff"
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "private, no-store"
        return response


# --- messages -----------------------------------------------------------------------------


class MessageListView(APIView):
    def get_throttles(self) -> list[Any]:
        return post_only(MessageThrottle, self.request)

    @extend_schema(
        parameters=[
            CASE_REF,
            OpenApiParameter("after", int, description="Only messages numbered after this (default 0)"),
            OpenApiParameter(
                "before", int,
                description="Only messages numbered before this: the 500 nearest to it (to page back from the newest)",
            ),
        ],
        responses={200: s.MessageSerializer(many=True)},
        tags=["messages"],
    )
    def get(self, request: Request, reference: str) -> Response:
        """History by sequence range, oldest first, at most 500 at a time: those right after `after`,
        or, with `before`, those right before it (so that paging back from the newest works)."""
        case = _case(request, reference)
        try:
            after = int(request.query_params.get("after", 0))
            before = int(request.query_params["before"]) if "before" in request.query_params else None
        except ValueError:
            return error_response("invalid", _("after and before must be whole numbers."), 400)
        if after < 0 or (before is not None and before < 0):
            return error_response("invalid", _("after and before must be whole numbers."), 400)
        messages_ = Message.objects.filter(case=case, seq__gt=after).select_related("sender", "document", "case")
        if before is None:
            page = list(messages_.order_by("seq")[:500])
        else:
            page = list(messages_.filter(seq__lt=before).order_by("-seq")[:500])[::-1]
        return Response([chat.message_payload(m) for m in page])

    @extend_schema(
        parameters=[CASE_REF],
        request=s.MessageCreateSerializer,
        responses={201: s.MessageCreatedSerializer, 200: s.MessageCreatedSerializer},
        tags=["messages"],
    )
    def post(self, request: Request, reference: str) -> Response:
        """Send a message over HTTP when the socket cannot be used: the same service and client id
        as the socket, so a retry is stored once."""
        case = _case(request, reference)
        data = s.MessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        document = None
        if data.validated_data.get("document_id") is not None:
            document = case.documents.filter(pk=data.validated_data["document_id"]).first()
            if document is None:
                # As a case that is not there: the request names something that does not exist.
                return error_response("document", _("That document is not on this case."), 404)
        message, created = chat.message_post(
            case=case,
            sender=_user(request),
            body=data.validated_data.get("body", ""),
            client_id=data.validated_data["client_id"],
            document=document,
        )
        if created:
            chat.offline_notice_enqueue(message=message)
        return Response(
            {"seq": message.seq, "created": created, "message": chat.message_payload(message)},
            status=201 if created else 200,
        )


class VoiceMessageView(APIView):
    throttle_classes = [UploadThrottle]

    @extend_schema(
        parameters=[CASE_REF],
        request={"multipart/form-data": s.VoiceUploadSerializer},
        responses={201: s.MessageCreatedSerializer, 200: s.MessageCreatedSerializer},
        tags=["messages"],
    )
    def post(self, request: Request, reference: str) -> Response:
        """Send a voice message: a recording (WebM or Ogg with Opus, MP4 with AAC; at most
        VOICE_MAX_SECONDS) checked by its bytes, kept privately on the case and posted in its chat.
        Its message's document carries `is_audio` and `duration_ms`. A retry with the same client
        id gets the first message (200) without reading the file again."""
        case = _case(request, reference)
        data = s.VoiceUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        message, created = voice_message_post(
            case=case,
            sender=_user(request),
            upload=upload,
            name=upload.name or "",
            client_id=data.validated_data["client_id"],
        )
        if created:
            chat.offline_notice_enqueue(message=message)
        return Response(
            {"seq": message.seq, "created": created, "message": chat.message_payload(message)},
            status=201 if created else 200,
        )


# --- professional queue -------------------------------------------------------------------


class QueueView(APIView):
    @extend_schema(responses={200: s.QueueSerializer}, tags=["queue"])
    def get(self, request: Request) -> Response:
        professional = _professional(request)
        return Response(
            s.QueueSerializer(
                {
                    "on_duty": professional.on_duty,
                    "load": selectors.professional_load(professional),
                    "capacity": professional.capacity,
                    "open_cases": selectors.open_cases_of_professional(professional).select_related("assignee__user"),
                    "waiting": selectors.queue_for_professional(professional),
                }
            ).data
        )


class ClaimNextView(APIView):
    @extend_schema(request=None, responses={200: s.CaseDetailSerializer, 204: None}, tags=["queue"])
    def post(self, request: Request) -> Response:
        """Take the next waiting case (highest priority, then longest waiting); 204 when none waits."""
        case = services.case_claim_next(professional=_professional(request))
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _detail(request, case)


class OnDutyView(APIView):
    @extend_schema(request=s.OnDutySerializer, responses={200: s.OnDutyAnswerSerializer}, tags=["queue"])
    def post(self, request: Request) -> Response:
        """Going on duty gives you the waiting cases of your services, up to your capacity."""
        data = s.OnDutySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        professional = _professional(request)
        given = services.professional_set_on_duty(professional=professional, on_duty=data.validated_data["on_duty"])
        return Response({"on_duty": data.validated_data["on_duty"], "given": [case.reference for case in given]})


# --- rating -------------------------------------------------------------------------------


class RatingView(APIView):
    @extend_schema(parameters=[CASE_REF], request=s.RatingSerializer, responses={201: None, 204: None}, tags=["cases"])
    def post(self, request: Request, reference: str) -> Response:
        """Rate a closed case (1-5), or skip=true to be asked no more."""
        from consult.forms import RatingForm

        case = _case(request, reference)
        data = s.RatingSerializer(data=s.fields_of(request.data))
        data.is_valid(raise_exception=True)
        if data.validated_data.get("skip"):
            services.rating_skip(case=case, resident=_user(request))
            return Response(status=status.HTTP_204_NO_CONTENT)
        services.rating_submit(case=case, resident=_user(request), **s.validate_with(RatingForm, request.data))
        return Response(status=status.HTTP_201_CREATED)


# --- anything else ------------------------------------------------------------------------


@csrf_exempt  # it changes nothing, for anyone
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other address under the API (a document id that is not a number, a reference with a
    slash): the error shape, not Django's HTML page."""
    return JsonResponse({"error": {"code": "not_found", "message": _("Not found."), "fields": {}}}, status=404)

"""API for personal information: the consent texts an app must show before an intake, a person's
copy of their data, erasure requests and their answers."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consult import selectors
from consult.api.serializers import validate_with
from consult.api.views import CASE_REF, _user
from consult.errors import NotAllowed, WrongState
from consult.models import User
from privacy import services
from privacy.export import export_build, export_filename
from privacy.forms import ErasureDecisionForm, ErasureRequestForm
from privacy.models import ErasureRequest, ErasureStatus, Purpose
from privacy.selectors import consent_text_current, erasure_requests_pending

PURPOSE = OpenApiParameter("purpose", str, OpenApiParameter.PATH, enum=Purpose.values)


class ConsentTextSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    version = serializers.IntegerField()
    published_at = serializers.DateTimeField()
    title = serializers.CharField()
    body = serializers.CharField(allow_blank=True)
    agree = serializers.CharField()
    zh_hans = serializers.DictField(child=serializers.CharField(allow_blank=True))
    en = serializers.DictField(child=serializers.CharField(allow_blank=True))


class ConsentTextView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(parameters=[PURPOSE], responses={200: ConsentTextSerializer}, tags=["public"])
    def get(self, request: Request, purpose: str) -> Response:
        """The consent text in force for a purpose (`health` for a medical consultation,
        `share_employer` for a labour dispute), in the request's language and in both: show it
        apart from the form, then send its `version` as `consent_version` with the intake."""
        if purpose not in Purpose.values:
            raise Http404
        text = consent_text_current(purpose=purpose)
        return Response(
            {
                "purpose": text.purpose,
                "version": text.version,
                "published_at": text.published_at,
                **text.in_language(),
                "zh_hans": text.in_language("zh-hans"),
                "en": text.in_language("en"),
            }
        )


class ExportView(APIView):
    @extend_schema(
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
        tags=["account"],
    )
    def get(self, request: Request) -> FileResponse:
        """A copy of the signed-in person's data: a zip with `data.json` (account, their cases with
        intake, records, consents, timeline, messages, documents) and the files under `files/`."""
        user = request.user
        assert isinstance(user, User)
        # A store that is down answers the API's 503 (consult/api/errors.py).
        archive = export_build(user=user)
        return FileResponse(archive, as_attachment=True, filename=export_filename(user), content_type="application/zip")


class ErasureRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.CharField(source="case.reference")
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    answer = serializers.CharField(allow_blank=True)


class ErasureAskSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class ErasureDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "refuse"])
    answer = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ErasureAskView(APIView):
    @extend_schema(
        parameters=[CASE_REF], request=ErasureAskSerializer, responses={201: ErasureRequestSerializer}, tags=["cases"]
    )
    def post(self, request: Request, reference: str) -> Response:
        """The resident asks that the case's personal details be erased (an open case is withdrawn
        with it). A coordinator of its domain answers; the resident is told by a notice."""
        user = _user(request)
        case = selectors.case_get_for_user(user=user, reference=reference)
        data = validate_with(ErasureRequestForm, request.data)
        erasure = services.erasure_request(case=case, resident=user, reason=data["reason"])
        return Response(ErasureRequestSerializer(erasure).data, status=201)


class ErasureDecideView(APIView):
    @extend_schema(
        parameters=[CASE_REF], request=ErasureDecisionSerializer, responses={200: ErasureRequestSerializer},
        tags=["cases"],
    )
    def post(self, request: Request, reference: str) -> Response:
        """A coordinator of the case's domain approves the waiting request (the case is anonymised)
        or refuses it, saying why in `answer`."""
        user = _user(request)
        case = selectors.case_get_for_user(user=user, reference=reference)
        if not user.is_coordinator:
            raise NotAllowed(_("Only a coordinator of this kind of case can decide."), code="not_coordinator")
        pending = ErasureRequest.objects.filter(case=case, status=ErasureStatus.PENDING).first()
        if pending is None:
            raise WrongState(_("No erasure request is waiting on this case."), code="no_request")
        data = validate_with(ErasureDecisionForm, request.data)
        erasure = services.erasure_decide(
            request=pending, coordinator=user, approve=data["decision"] == "approve", answer=data["answer"]
        )
        return Response(ErasureRequestSerializer(erasure).data)


class ErasureListView(APIView):
    @extend_schema(responses={200: ErasureRequestSerializer(many=True)}, tags=["cases"])
    def get(self, request: Request) -> Response:
        """The requests waiting for the signed-in coordinator (those of their domains)."""
        user = _user(request)
        if not user.is_coordinator:
            raise NotAllowed(_("Only coordinators answer erasure requests."), code="not_coordinator")
        return Response(ErasureRequestSerializer(erasure_requests_pending(user=user), many=True).data)

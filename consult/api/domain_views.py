"""The two API views every domain has: open a case from its intake form, and let the assignee
record the domain's outcome (a medical note, a mediation outcome). Each domain fills in its form
and service; the checks are written once, here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consult import selectors
from consult.api import serializers as s
from consult.api.errors import error_response
from consult.api.idempotency import idempotent
from consult.api.views import CASE_REF, _detail, _user
from consult.errors import NotAllowed
from consult.models import Case, Professional, Skill, User
from privacy.models import ConsentChannel

NO_SUCH_SERVICE = gettext_lazy("No service with this code is offered: see the list of services.")

IDEMPOTENCY_KEY = OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)


def case_create_view(
    *,
    kind: str,
    form_class: type[Any],
    open_case: Callable[..., tuple[Case, list[str]]],
    request_serializer: type[Any],
    description: str,
    not_offered: Callable[[Mapping[str, Any]], dict[str, list[str]]] = lambda fields: {},
    more: Callable[[Mapping[str, Any], User], dict[str, Any]] = lambda fields, user: {},
) -> type[APIView]:
    """`not_offered`: the fields that name something the service does not offer (beyond the
    service itself), with a message each. `more`: what else the request gives `open_case` (a
    referral: the case it comes from and the copies it carries), after the form is valid."""

    class CaseCreateView(APIView):
        @extend_schema(
            parameters=[IDEMPOTENCY_KEY],
            request=request_serializer,
            responses={201: s.CaseDetailSerializer, 404: s.ErrorSerializer},
            tags=["cases"],
            description=description,
        )
        @idempotent
        def post(self, request: Request) -> Response:
            user = _user(request)
            if not user.is_resident:
                raise NotAllowed(_("Only residents open cases."), code="not_resident")
            fields = s.fields_of(request.data)
            code = str(fields.get("skill", ""))
            # A NUL cannot be sent to PostgreSQL (DataError, a 500): such a code names no service.
            skill = Skill.objects.filter(code=code, kind=kind, is_active=True).first() if "\x00" not in code else None
            # What is offered lives in the database, not in the schema: naming something that is
            # not offered is a 404, as a case that does not exist is, not a malformed request.
            missing = {} if skill else {"skill": [str(NO_SUCH_SERVICE)]}
            missing.update(not_offered(fields))
            if missing:
                return error_response("not_offered", " ".join(m for ms in missing.values() for m in ms), 404, missing)
            cleaned = s.validate_with(form_class, request.data, replace={"skill": skill.pk if skill else ""})
            case, _problems = open_case(resident=user, data=cleaned, channel=ConsentChannel.API, **more(fields, user))
            return _detail(request, case, 201)

    return CaseCreateView


def assignee_record_view(
    *,
    kind: str,
    form_class: type[Any],
    save: Callable[[Case, Professional, dict[str, Any]], object],
    request_serializer: type[Any],
    not_assignee: Callable[[], StrOrPromise],
    description: str,
    form_kwargs: Callable[[Case], dict[str, Any]] = lambda case: {},
) -> type[APIView]:
    class AssigneeRecordView(APIView):
        @extend_schema(
            parameters=[CASE_REF],
            request=request_serializer,
            responses={200: s.CaseDetailSerializer},
            tags=["cases"],
            description=description,
        )
        def put(self, request: Request, reference: str) -> Response:
            user: User = _user(request)
            case = selectors.case_get_for_user(user=user, reference=reference)
            if case.kind != kind:
                # As on the pages: the other domain has no such record.
                raise Http404
            if case.assignee is None or case.assignee.user_id != user.pk:
                raise NotAllowed(not_assignee(), code="not_assignee")
            cleaned = s.validate_with(form_class, request.data, **form_kwargs(case))
            save(case, case.assignee, cleaned)
            return _detail(request, case)

    return AssigneeRecordView

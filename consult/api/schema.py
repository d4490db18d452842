from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

# Every operation can answer with the one error shape; documenting it keeps clients (and the
# schema tests) honest about what they may receive. 405: /cases/{reference}/ also matches
# /cases/legal/ and /cases/medical/, which only take POST; 415: a body the parsers cannot read
# (a broken multipart boundary).
ERROR_CODES = ("400", "401", "403", "404", "405", "409", "415", "422", "429", "503")

_SEP = r"[\s\-()]*"
# What the API reads from the request fields of these names, written as the schema's patterns, so
# a client (and schemathesis) knows what will be accepted. A phone number: spaces, dashes and
# brackets anywhere, an optional +86 or 0086, then 1[3-9] and 9 digits (consult.models'
# normalize_phone, then phone_validator). The last 4 digits of a phone: consult.forms.TrackForm.
INPUT_PATTERNS = {
    "phone": rf"^{_SEP}(\+{_SEP}8{_SEP}6{_SEP})?(0{_SEP}0{_SEP}8{_SEP}6{_SEP})?1{_SEP}[3-9]{_SEP}(\d{_SEP}){{9}}$",
    "phone_last4": r"^\d{4}$",
    # The code from the SMS: 6 digits, spaces anywhere, full-width digits too (accounts.forms.CodeField).
    "code": r"^\s*([0-9０-９]\s*){6}$",
}


class ConsultAutoSchema(AutoSchema):
    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and isinstance(field, serializers.CharField) and field.field_name in INPUT_PATTERNS:
            schema["pattern"] = INPUT_PATTERNS[field.field_name]
        if direction == "request" and isinstance(field, serializers.FileField) and not field.allow_empty_file:
            schema["minLength"] = 1  # an empty file is refused
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        # A rule between fields (one field needed when another has some value), which fields alone
        # cannot say: the serializer states it as JSON Schema, for the request it reads.
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        rules = getattr(serializer, "schema_rules", None)
        if direction == "request" and rules:
            schema.update(rules)
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        from consult.api.serializers import ErrorSerializer

        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        for code in ERROR_CODES:
            bodies.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
        return bodies

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

# Every operation can answer with the one error shape; documenting it keeps clients (and the
# schema tests) honest about what they may receive. 405: /cases/{reference}/ also matches
# /cases/legal/ and /cases/medical/, which only take POST; 415: a body the parsers cannot read
# (a broken multipart boundary).
ERROR_CODES = ("400", "401", "403", "404", "405", "409", "415", "422", "429", "503")


class ConsultAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        from consult.api.serializers import ErrorSerializer

        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        for code in ERROR_CODES:
            bodies.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
        return bodies

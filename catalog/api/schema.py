"""OpenAPI generation: every operation documents the API's error shape for 400/401/403/404/429."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

ERROR_CODES = ("400", "401", "403", "404", "429")


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the documented error responses (catalog.api.exceptions)."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        from catalog.api.serializers import ErrorSerializer

        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = list(ERROR_CODES)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    ErrorSerializer, code, direction=direction
                )
        return responses

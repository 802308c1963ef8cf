"""Bad input stops at the door, the same way for every page and API endpoint.

- A NUL character (which no PostgreSQL text or JSON column can hold) in a query parameter, an urlencoded
  form field or a JSON body is a 400 naming the parameter. File uploads (multipart) may hold NUL bytes:
  their text fields are checked by the service that reads them (`reject_nul`).
- A body larger than `PORTAL_MAX_REQUEST_BYTES` (by default the largest upload the portal accepts, plus
  room for the form around it) is a 413, refused before it is read.

API paths answer in the API's error shape; pages get a short plain-text answer.

Every response also carries the Content-Security-Policy of `settings.CONTENT_SECURITY_POLICY`
(`ContentSecurityPolicyMiddleware`, README "Deployment").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from catalog.humanize import human_size

NUL_MESSAGE = "NUL characters are not allowed"


def _error(request: HttpRequest, status: int, code: str, message: str, details: dict[str, Any]) -> HttpResponse:
    if request.path.startswith("/api/"):
        from catalog.api.exceptions import error_body

        return JsonResponse(error_body(status, code, message, details), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _nul_in_json(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) holding a NUL character in a parsed JSON value, or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = _nul_in_json(item, where)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_in_json(item, f"{path}[{i}]" if path else f"[{i}]")
            if found:
                return found
    return None


class InputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.PORTAL_MAX_REQUEST_BYTES
        if length > limit:
            message = (
                f"the request body is {human_size(length)}; at most {human_size(limit)} is accepted "
                "(PORTAL_MAX_REQUEST_BYTES)"
            )
            return _error(request, 413, "too_large", message, {"body": ["too large"]})
        found = self._nul_parameter(request)
        if found:
            return _error(request, 400, "invalid", f"{found} contains a NUL character", {found: [NUL_MESSAGE]})
        return self.get_response(request)

    @staticmethod
    def _nul_parameter(request: HttpRequest) -> str | None:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in v for v in values):
                return name.replace("\x00", "")
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        if content_type.startswith("application/x-www-form-urlencoded"):
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in v for v in values):
                    return name.replace("\x00", "")
        elif content_type.startswith("application/json") and b"\\u0000" in request.body.lower():
            try:
                return _nul_in_json(json.loads(request.body))
            except ValueError:
                return None  # not JSON: the parser answers that
        return None


class ContentSecurityPolicyMiddleware:
    """Set `settings.CONTENT_SECURITY_POLICY` on every response that has not set a policy of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

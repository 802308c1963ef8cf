"""One JSON error shape for the whole API.

    {"error": {"status": 404, "code": "not_found", "message": "...", "details": {...}}}

400 invalid (details: field → messages), 401 not_authenticated / authentication_failed,
403 permission_denied / forbidden, 404 not_found, 405 method_not_allowed, 409 conflict,
429 throttled (details.retry_after seconds), 503 unavailable. Domain errors (catalog.exceptions)
carry their own status and code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request, page_not_found, server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from catalog.exceptions import InvalidInput, PortalError

STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    429: "throttled",
    503: "unavailable",
}


class InvalidFilter(exceptions.ValidationError):
    """A bad query parameter (filter, ordering, as_of ...): a 400 that names it."""


def error_body(status_code: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error shape."""
    return {"error": {"status": status_code, "code": code, "message": message, "details": details or {}}}


def _code_of(exc: exceptions.APIException, status_code: int) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else STATUS_CODES.get(status_code, "error")


def _message_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, InvalidFilter) and isinstance(exc.detail, dict):
        return "Invalid query parameter: " + ", ".join(sorted(str(k) for k in exc.detail)) + "."
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(exc.detail, dict):
            return "Invalid input: " + ", ".join(sorted(str(k) for k in exc.detail)) + "."
        return "Invalid input."
    return str(exc.detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error as `{"error": {...}}`."""
    if isinstance(exc, PortalError):
        domain_details = exc.details if isinstance(exc, InvalidInput) else {}
        return Response(error_body(exc.status_code, exc.code, str(exc), domain_details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        messages = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(messages)
    elif isinstance(exc, ObjectDoesNotExist) and not isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied) and not exc.args:
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    status_code = response.status_code
    if isinstance(exc, exceptions.APIException):
        code = _code_of(exc, status_code)
        message = _message_of(exc)
        details: Any = exc.detail if isinstance(exc, exceptions.ValidationError) else {}
        if isinstance(details, list):
            details = {"non_field_errors": details}
        if isinstance(exc, exceptions.Throttled):
            details = {"retry_after": getattr(exc, "wait", None)}
    else:  # Http404 / PermissionDenied converted by DRF
        code = STATUS_CODES.get(status_code, "error")
        message = "Not found." if status_code == status.HTTP_404_NOT_FOUND else str(exc)
        details = {}
    response.data = error_body(status_code, code, message, details)
    return response


def not_found_view(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: URLs under /api/ that match no route get the JSON error shape; others the HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(404, "not_found", "No such API endpoint."), status=404)
    return page_not_found(request, exception)


def bad_request_view(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (e.g. a disallowed Host header): JSON under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
            message = f"Request body too large: at most {limit // 1024} KiB (DATA_UPLOAD_MAX_MEMORY_SIZE)."
            return JsonResponse(error_body(413, "too_large", message), status=413)
        return JsonResponse(error_body(400, "bad_request", "Bad request."), status=400)
    return bad_request(request, exception)


DATABASE_DOWN = "The portal's database cannot be reached right now; nothing was changed. Try again shortly."


def server_error_view(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/ (nothing was changed: requests run in a transaction or fail before writing).

    A lost database connection is an outage, not a bug: 503 with a short message (as /readyz says), on pages
    and the API alike, wherever in the stack it happened (a middleware's session lookup included)."""
    import sys

    from django.db import InterfaceError, OperationalError

    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        if request.path.startswith("/api/"):
            return JsonResponse(
                error_body(503, "unavailable", DATABASE_DOWN, {"database": ["unreachable"]}), status=503
            )
        response = HttpResponse(DATABASE_DOWN, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "30"
        return response
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(500, "server_error", "The portal hit an unexpected error; it has been logged."), status=500
        )
    return server_error(request)

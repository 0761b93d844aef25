"""The API's one error shape: {"error": {"code", "message", "param"?, "request_id"}}.

Codes are stable and documented in docs/api-errors.md; a client branches on
`code`, never on `message`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import dependencies
from apps.core.errors import ServiceError, error_body


class ApiError(exceptions.APIException):
    """An error with a stable code. Raise it from views and services' callers."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = 400,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.param = param
        # DRF's handler answers with Retry-After when an exception has `wait`.
        if retry_after is not None:
            self.wait = retry_after


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def _first_error(detail: Any, prefix: str = "") -> tuple[str | None, str]:
    """The first (field path, message) of a ValidationError's detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            param = None if key == "non_field_errors" else f"{prefix}{key}"
            nested_param, message = _first_error(value, f"{param}." if param else prefix)
            return nested_param or param, message
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    return None, str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    request = context.get("request")
    dependency = dependencies.failed_dependency(exc)
    if dependency is not None:
        # A part of the platform is down (docs/operations.md): not a bug.
        # DRF renders the answer, so the terminal API's stays signed.
        dependencies.dependency_failure_log(request, dependency, exc)
        exc = ApiError(
            "service_unavailable",
            dependencies.unavailable_message(dependency),
            status_code=503,
            param=dependency,
            retry_after=dependencies.retry_after_seconds(),
        )
    elif isinstance(exc, ServiceError):
        exc = ApiError(exc.code, exc.message, status_code=exc.status_code, param=exc.field)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, str(exc.detail), param=exc.param, request=request)
    elif isinstance(exc, exceptions.ValidationError):
        param, message = _first_error(exc.detail)
        body = error_body("invalid_request", message, param=param, request=request)
        body["error"]["fields"] = exc.detail
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = error_body(code, str(detail), request=request)
    response.data = body
    return response


def server_error_response(request: HttpRequest | None = None) -> Response:
    return Response(
        error_body("internal_error", "The server could not complete the request.", request=request),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )

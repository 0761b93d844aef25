"""The base of every service's refusal of a request (a business rule said
no, not a bug). `code` is stable (docs/api-errors.md), `status_code` the HTTP
status the API answers with, `field` the input at fault: the API sets
`param` from it (apps.core.api.exception_handler turns any ServiceError into
the one error shape, so views need no try/except) and the portal puts the
message beside that field."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.core.context import request_id_var


class ServiceError(Exception):
    status_code = 400

    def __init__(
        self, code: str, message: str, *, status_code: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.field = field


def error_body(
    code: str, message: str, *, param: str | None = None, request: HttpRequest | None = None
) -> dict:
    """The API's one error shape: {"error": {"code", "message", "param"?, "request_id"}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if param:
        error["param"] = param
    error["request_id"] = getattr(request, "request_id", None) or request_id_var.get()
    return {"error": error}

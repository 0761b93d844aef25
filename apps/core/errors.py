"""The base of every service's refusal of a request (a business rule said
no, not a bug). `code` is stable (docs/api-errors.md), `status_code` the HTTP
status the API answers with, `field` the input at fault: the API sets
`param` from it (apps.core.api.exception_handler turns any ServiceError into
the one error shape, so views need no try/except) and the portal puts the
message beside that field."""

from __future__ import annotations


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

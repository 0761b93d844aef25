"""The one exception accounts services raise for a refused request. `code`
is stable (docs/api-errors.md); `field` names the input at fault, so the API
sets `param` and the portal puts the message beside that field."""

from __future__ import annotations

import datetime

from apps.core.errors import ServiceError


class AccountsError(ServiceError):
    pass


class CredentialLocked(AccountsError):
    """Too many wrong attempts: the credential refuses every try until `until`."""

    status_code = 423

    def __init__(
        self, code: str, message: str, *, until: datetime.datetime | None, field: str | None = None
    ) -> None:
        super().__init__(code, message, field=field)
        self.until = until


class PaymentPasswordLocked(CredentialLocked):
    """payment_password_verify: payments are locked for this payer."""


class PaymentPasswordNotSet(AccountsError):
    """payment_password_verify: the payer has no payment password yet."""

    status_code = 409

"""The ledger's refusals. Each has a stable `code` the API layer can answer
with (docs/api-errors.md, "Ledger")."""

from __future__ import annotations

from apps.core.errors import ServiceError


class LedgerError(Exception):
    code = "ledger_error"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"

    def __init__(self, account_public_id: object, needed: int, message: str = "") -> None:
        self.account_public_id = account_public_id
        self.needed = needed
        super().__init__(message or f"account {account_public_id} holds less than {needed}")


class AccountFrozen(LedgerError):
    code = "account_frozen"

    def __init__(self, account_public_id: object) -> None:
        self.account_public_id = account_public_id
        super().__init__(f"account {account_public_id} is frozen")


class UnbalancedEntry(LedgerError):
    """A programming error: the lines offered to ledger_post are not a valid entry."""

    code = "ledger_unbalanced"


class DuplicateLedgerEvent(LedgerError):
    """This business event (or idempotency key) already moved money of this kind."""

    code = "ledger_duplicate_event"


class CorrectionRefused(LedgerError):
    """A refund, hold decision or reversal the original entry does not allow."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class PaymentCodeError(Exception):
    code = "payment_code_invalid"


class PaymentCodeUnknown(PaymentCodeError):
    code = "payment_code_unknown"


class PaymentCodeExpired(PaymentCodeError):
    code = "payment_code_expired"


class PaymentCodeUsed(PaymentCodeError):
    code = "payment_code_used"


class PayerNotVerified(PaymentCodeError):
    code = "payer_not_verified"


class PaymentError(ServiceError):
    """A refused payment, refund, reversal or batch request (docs/api-errors.md,
    "Payments")."""


class RequestReplayed(PaymentError):
    """The very signed request already answered came again (its nonce is the
    one its idempotency record keeps): a replay, refused as the signature
    check refuses one."""

    def __init__(self) -> None:
        super().__init__("signature_replayed", "This nonce was already used.", status_code=401)

"""Writes of the transactions app: the ledger (ledger.py), idempotency
(idempotency.py), the payments built on them (payments.py), their refunds
and reversals (refunds.py), batch closes (batches.py) and held payments'
conclusion (holds.py). Import from here."""

from apps.transactions.services.batches import batch_close
from apps.transactions.services.holds import payment_hold_conclude
from apps.transactions.services.idempotency import (
    Answer,
    idempotency_purge,
    idempotency_replay_find,
    request_hash,
)
from apps.transactions.services.ledger import (
    PAYMENT_CODE_DIGITS,
    PAYMENT_CODE_PREFIX,
    PAYMENT_CODE_TTL,
    Event,
    Line,
    ledger_account_for_merchant,
    ledger_account_for_payer,
    ledger_account_freeze,
    ledger_hold_place,
    ledger_hold_release,
    ledger_hold_return,
    ledger_payment_transfer,
    ledger_platform_account,
    ledger_post,
    ledger_refund,
    ledger_reverse,
    merchant_withdraw,
    payment_code_consume,
    payment_code_hash,
    payment_code_issue,
    payment_code_purge_expired,
    payment_code_spend,
    wallet_top_up,
)
from apps.transactions.services.payments import payment_answer, payment_confirm, payment_create
from apps.transactions.services.refunds import (
    payment_refund,
    payment_refund_by_user,
    payment_reverse,
)

__all__ = [
    "PAYMENT_CODE_DIGITS",
    "PAYMENT_CODE_PREFIX",
    "PAYMENT_CODE_TTL",
    "Answer",
    "Event",
    "Line",
    "batch_close",
    "idempotency_purge",
    "idempotency_replay_find",
    "ledger_account_for_merchant",
    "ledger_account_for_payer",
    "ledger_account_freeze",
    "ledger_hold_place",
    "ledger_hold_release",
    "ledger_hold_return",
    "ledger_payment_transfer",
    "ledger_platform_account",
    "ledger_post",
    "ledger_refund",
    "ledger_reverse",
    "merchant_withdraw",
    "payment_answer",
    "payment_code_consume",
    "payment_code_hash",
    "payment_code_issue",
    "payment_code_purge_expired",
    "payment_code_spend",
    "payment_confirm",
    "payment_create",
    "payment_hold_conclude",
    "payment_refund",
    "payment_refund_by_user",
    "payment_reverse",
    "request_hash",
    "wallet_top_up",
]

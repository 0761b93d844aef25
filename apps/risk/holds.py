"""How a decided hold's money moves. Risk decides a held payment (approve,
decline, expiry) and records the decision; moving the money, and the
payment's status with it, is the ledger's. The transactions app, which sits
above risk, registers the one function that does both at start-up
(apps.transactions.apps); risk's case decisions call it, inside their own
transaction, right after recording the decision:

    hold_conclude(hold_entry_public_id=..., payment_public_id=..., result="released",
                  case_public_id=..., actor=reviewer, reason=...)

`result` is "released" (to the merchant), "returned" or "expired" (back to
the payer). An exception rolls the decision back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

HoldConclusion = Callable[..., None]

_conclusion: HoldConclusion | None = None


def hold_conclusion_register(conclude: HoldConclusion) -> None:
    global _conclusion
    _conclusion = conclude


def hold_conclude(
    *,
    hold_entry_public_id: Any,
    payment_public_id: Any,
    result: str,
    case_public_id: Any,
    actor: Any,
    reason: str,
) -> None:
    if _conclusion is None:
        raise ImproperlyConfigured("no hold conclusion registered (apps.transactions installed?)")
    _conclusion(
        hold_entry_public_id=hold_entry_public_id,
        payment_public_id=payment_public_id,
        result=result,
        case_public_id=case_public_id,
        actor=actor,
        reason=reason,
    )

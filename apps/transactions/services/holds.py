"""A held payment's conclusion: once compliance decided (or the hold
expired), its money moves and its status follows, in one call inside risk's
decision transaction (registered with apps/risk/holds.py at start-up)."""

from __future__ import annotations

from typing import Any

from apps.core.db import WriteBatch
from apps.transactions.models import EntryKind, JournalEntry, Payment, PaymentStatus
from apps.transactions.services.ledger import ledger_hold_release, ledger_hold_return
from apps.transactions.services.payments import payment_transition

RELEASED = "released"


def payment_hold_conclude(
    *,
    hold_entry_public_id: Any,
    payment_public_id: Any,
    result: str,
    case_public_id: Any,
    actor: Any,
    reason: str = "",
) -> None:
    """Releases a hold to the merchant (`result` "released": the payment
    completes) or returns it to the payer ("returned" or "expired": the
    payment is returned). Lock order (locks.py): the payment row, its audit
    record, then the ledger accounts."""
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("merchant", "terminal")
        .filter(public_id=payment_public_id)
        .first()
    )
    if payment is not None and payment.status == PaymentStatus.HELD:
        batch = WriteBatch()
        payment_transition(
            payment,
            PaymentStatus.COMPLETED if result == RELEASED else PaymentStatus.RETURNED,
            actor=actor or "system",
            reason=f"hold {result}",
            data={"case": str(case_public_id), "decision_reason": reason[:200]},
            batch=batch,
        )
        batch.execute()
    hold = JournalEntry.objects.get(public_id=hold_entry_public_id, kind=EntryKind.HOLD)
    event = ("risk.riskcase", str(case_public_id))
    if result == RELEASED:
        ledger_hold_release(hold_entry=hold, event=event)
    else:
        ledger_hold_return(hold_entry=hold, event=event)

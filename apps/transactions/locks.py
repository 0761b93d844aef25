"""Row locks and balance changes of the ledger, in one fixed order.

Lock order inside any transaction that moves money (a deadlock needs two
transactions taking the same locks in different orders, so every money path
takes them in this one):

1. business rows: the payment, refund or journal entry being corrected
   (`journal_entry_lock`), in primary-key order within one model;
2. the audit chain head (apps.audit.services.audit_record);
3. ledger account rows, in primary-key order (`ledger_balances_apply`), as the
   LAST statements before commit.

The account rows come last because some are hot: every payment at a busy
merchant credits its settlement account and every payment credits the fee
revenue account. A credit is a plain `balance = balance + x`: it cannot fail a
balance check, so nothing reads or SELECTs ... FOR UPDATE the row first, and
PostgreSQL holds the row only from that UPDATE to the COMMIT right after it.
A debit of customer money is one conditional UPDATE (`... WHERE balance >= x
AND NOT frozen`): under READ COMMITTED a debit that waited for another one
re-checks the condition against the committed balance, so concurrent
payments can never overdraw a wallet. So callers: write your audit record
and lock your business rows BEFORE calling a ledger service, never after.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import F

from apps.transactions.errors import AccountFrozen, InsufficientFunds, LedgerError
from apps.transactions.models import JournalEntry, LedgerAccount


def journal_entry_lock(entry: JournalEntry) -> JournalEntry:
    """Locks an entry's row (SELECT ... FOR UPDATE; no UPDATE, so the
    immutability trigger does not fire) so that corrections of one entry
    (refunds, hold decisions, reversals) run one at a time."""
    return JournalEntry.objects.select_for_update().get(pk=entry.pk)


def ledger_balances_apply(deltas: Sequence[tuple[LedgerAccount, int]]) -> None:
    """Changes each account's cached balance by its delta, in primary-key
    order. Debits of customer money are conditional; everything else is an
    unconditional F() update. Raises InsufficientFunds / AccountFrozen; the
    caller's transaction then rolls the whole entry back."""
    for account, delta in sorted(deltas, key=lambda pair: pair[0].pk):
        rows = LedgerAccount.objects.filter(pk=account.pk)
        if delta < 0:
            rows = rows.filter(frozen=False)
            if account.is_customer_money:
                rows = rows.filter(balance__gte=-delta)
        if rows.update(balance=F("balance") + delta) == 1:
            continue
        current = LedgerAccount.objects.filter(pk=account.pk).values("frozen", "balance").first()
        if current is None:
            raise LedgerError(f"ledger account {account.public_id} does not exist")
        if current["frozen"]:
            raise AccountFrozen(account.public_id)
        raise InsufficientFunds(account.public_id, -delta)

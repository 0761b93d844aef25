"""Row locks and balance changes of the ledger, in one fixed order.

Lock order inside any transaction that moves money (a deadlock needs two
transactions taking the same locks in different orders, so every money path
takes them in this one):

1. business rows: the payment, refund or journal entry being corrected
   (`journal_entry_lock`), in primary-key order within one model;
2. the audit chain head (apps.audit.services.audit_record);
3. ledger account rows, in primary-key order (`ledger_balances_apply`), as the
   LAST statement before commit.

The account rows come last because some are hot: every payment at a busy
merchant credits its settlement account and every payment credits the fee
revenue account. A credit is a plain `balance = balance + x`: it cannot fail a
balance check, so nothing reads or SELECTs ... FOR UPDATE the row first, and
PostgreSQL holds the row only from that UPDATE to the COMMIT right after it.
A debit of customer money is conditional (`... WHERE balance >= x AND NOT
frozen`, in the one UPDATE of the entry's accounts): under READ COMMITTED a
debit that waited for another one re-checks the condition against the
committed balance, so concurrent payments can never overdraw a wallet. So callers: write your audit record
and lock your business rows BEFORE calling a ledger service, never after.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from apps.core.db import WriteBatch
from apps.transactions.errors import AccountFrozen, InsufficientFunds, LedgerError
from apps.transactions.models import CUSTOMER_KINDS, JournalEntry, LedgerAccount


def journal_entry_lock(entry: JournalEntry) -> JournalEntry:
    """Locks an entry's row (SELECT ... FOR UPDATE; no UPDATE, so the
    immutability trigger does not fire) so that corrections of one entry
    (refunds, hold decisions, reversals) run one at a time."""
    return JournalEntry.objects.select_for_update().get(pk=entry.pk)


def _balances_sql(deltas: Sequence[tuple[LedgerAccount, int]]) -> tuple[str, list]:
    """One UPDATE of every account's cached balance by its delta. A debit
    (delta < 0) needs the account not frozen and, for customer money, a
    balance that covers it; a credit always lands. On PostgreSQL its rows
    are first locked in primary-key order, as every money path locks them
    (a sub-select sorted, then locked: an UPDATE alone would lock them in
    whatever order its scan meets them, and two payments at one merchant
    could deadlock); SQLite has one writer at a time."""
    table = LedgerAccount._meta.db_table
    ordered = sorted(deltas, key=lambda pair: pair[0].pk)
    case = "CASE id " + " ".join("WHEN %s THEN %s" for _ in ordered) + " END"
    case_params = [value for account, delta in ordered for value in (account.pk, delta)]
    ids = ", ".join("%s" for _ in ordered)
    if connection.vendor == "postgresql":
        ids = f"SELECT id FROM {table} WHERE id IN ({ids}) ORDER BY id FOR UPDATE"  # noqa: S608
    sql = (
        f"UPDATE {table} SET balance = balance + ({case}) "  # noqa: S608 (fixed parts)
        f"WHERE id IN ({ids}) AND (({case}) >= 0 OR (NOT frozen AND "
        f"(kind NOT IN (%s, %s) OR balance + ({case}) >= 0)))"
    )
    params = [
        *case_params,
        *(account.pk for account, _delta in ordered),
        *case_params,
        *CUSTOMER_KINDS,
        *case_params,
    ]
    return sql, params


def _balances_refusal(deltas: Sequence[tuple[LedgerAccount, int]]) -> None:
    """Raises what refused one of the changes (after the UPDATE changed
    fewer rows than it should): a frozen account, or too little money."""
    for account, delta in sorted(deltas, key=lambda pair: pair[0].pk):
        current = LedgerAccount.objects.filter(pk=account.pk).values("frozen", "balance").first()
        if current is None:
            raise LedgerError(f"ledger account {account.public_id} does not exist")
        if delta >= 0:
            continue
        if current["frozen"]:
            raise AccountFrozen(account.public_id)
        if account.is_customer_money and current["balance"] < -delta:
            raise InsufficientFunds(account.public_id, -delta)
    raise LedgerError("a balance change was refused")


def ledger_balances_apply(
    deltas: Sequence[tuple[LedgerAccount, int]], *, batch: WriteBatch | None = None
) -> None:
    """Changes each account's cached balance by its delta: one UPDATE (see
    _balances_sql), now or as the last write of `batch`. Raises
    InsufficientFunds / AccountFrozen (with a batch: when it executes); the
    caller's transaction then rolls the whole entry back."""
    sql, params = _balances_sql(deltas)
    if batch is not None:
        batch.raw(sql, params, expect=len(deltas), on_mismatch=lambda _n: _balances_refusal(deltas))
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != len(deltas):
            _balances_refusal(deltas)

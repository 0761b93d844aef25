"""Reads of the ledger: balances, histories, the integrity check."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from apps.accounts.models import Merchant, Payer
from apps.core.money import Money
from apps.transactions.models import (
    AccountKind,
    EntryKind,
    JournalEntry,
    LedgerAccount,
    Payment,
    Posting,
)

HISTORY_PAGE = 50


def ledger_balance_for_payer(*, payer: Payer, currency: str = "CNY") -> Money:
    """The wallet's balance; zero when the payer never had money."""
    balance = (
        LedgerAccount.objects.filter(kind=AccountKind.PAYER_WALLET, payer=payer, currency=currency)
        .values_list("balance", flat=True)
        .first()
    )
    return Money(balance or 0, currency)


def ledger_balance_for_merchant(*, merchant: Merchant, currency: str = "CNY") -> Money:
    """The merchant's settlement balance (what it can withdraw)."""
    balance = (
        LedgerAccount.objects.filter(
            kind=AccountKind.MERCHANT_SETTLEMENT, merchant=merchant, currency=currency
        )
        .values_list("balance", flat=True)
        .first()
    )
    return Money(balance or 0, currency)


def ledger_platform_balance(*, kind: str, currency: str = "CNY") -> Money:
    """A platform account's balance: fee revenue summed over its slots, risk
    hold, external clearing (negative: what came in from banks, net)."""
    total = LedgerAccount.objects.filter(kind=kind, currency=currency).aggregate(
        total=Sum("balance")
    )["total"]
    return Money(total or 0, currency)


def _history(
    accounts: QuerySet[LedgerAccount], *, before_id: int | None, limit: int
) -> list[Posting]:
    postings = (
        Posting.objects.filter(account__in=accounts)
        .select_related("entry", "account")
        .order_by("-id")
    )
    if before_id is not None:
        # Keyset pagination: the next page starts below the last id seen, so
        # a page costs the same at row 10 as at row 10 million.
        postings = postings.filter(id__lt=before_id)
    return list(postings[:limit])


def ledger_history_for_payer(
    *, payer: Payer, currency: str = "CNY", before_id: int | None = None, limit: int = HISTORY_PAGE
) -> list[Posting]:
    """The wallet's postings, newest first; pass the last id as `before_id`
    for the next page. Each posting carries its entry (kind, time, event)."""
    accounts = LedgerAccount.objects.filter(
        kind=AccountKind.PAYER_WALLET, payer=payer, currency=currency
    )
    return _history(accounts, before_id=before_id, limit=limit)


def ledger_history_for_merchant(
    *,
    merchant: Merchant,
    currency: str = "CNY",
    before_id: int | None = None,
    limit: int = HISTORY_PAGE,
) -> list[Posting]:
    """The settlement account's postings, newest first (keyset by id)."""
    accounts = LedgerAccount.objects.filter(
        kind=AccountKind.MERCHANT_SETTLEMENT, merchant=merchant, currency=currency
    )
    return _history(accounts, before_id=before_id, limit=limit)


def ledger_entries_for_event(*, event_type: str, event_id: str) -> QuerySet[JournalEntry]:
    """The entries a business event caused, oldest first, with postings (for
    a payment's detail page). Scope by tenant before calling: this is global."""
    return (
        JournalEntry.objects.filter(event_type=event_type, event_id=event_id)
        .prefetch_related("postings__account")
        .order_by("id")
    )


# At most this many offenders are named per check.
PROBLEMS_NAMED = 20


def _uid(value: object) -> str:
    # PostgreSQL returns a UUID, SQLite 32 hex digits: name both the same way.
    return str(uuid.UUID(str(value)))


def ledger_integrity_problems(using: str = "default") -> list[str]:
    """Checks the whole ledger; an empty list means it is healthy:
    every entry's postings sum to zero (and so each currency's ledger), every
    posting is in its entry's currency, every cached balance equals the sum
    of its account's postings, no customer (wallet, settlement) or risk-hold
    balance is negative. Each check is ONE set-based SQL statement, so it
    sees one consistent snapshot even while payments run, and it stays a few
    scans over millions of postings (no per-account queries). At most
    PROBLEMS_NAMED offenders are named per check."""
    account = LedgerAccount._meta.db_table
    entry = JournalEntry._meta.db_table
    posting = Posting._meta.db_table
    customer = (
        AccountKind.PAYER_WALLET.value,
        AccountKind.MERCHANT_SETTLEMENT.value,
        AccountKind.RISK_HOLD.value,
    )
    problems: list[str] = []
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT a.currency, SUM(p.amount) FROM {posting} p JOIN {account} a ON a.id = p.account_id "  # noqa: S608
            "GROUP BY a.currency HAVING SUM(p.amount) <> 0"
        )
        problems += [
            f"ledger in {currency} does not sum to zero (off by {total})"
            for currency, total in cursor
        ]

        cursor.execute(
            f"SELECT e.public_id, SUM(p.amount) FROM {posting} p JOIN {entry} e ON e.id = p.entry_id "  # noqa: S608
            f"GROUP BY e.id, e.public_id HAVING SUM(p.amount) <> 0 ORDER BY e.id LIMIT {PROBLEMS_NAMED + 1}"
        )
        rows = cursor.fetchall()
        problems += [
            f"entry {_uid(public_id)} does not balance (off by {total})"
            for public_id, total in rows[:PROBLEMS_NAMED]
        ]
        if len(rows) > PROBLEMS_NAMED:
            problems.append("... and more unbalanced entries")

        cursor.execute(
            f"SELECT e.public_id, a.public_id FROM {posting} p "  # noqa: S608
            f"JOIN {entry} e ON e.id = p.entry_id JOIN {account} a ON a.id = p.account_id "
            f"WHERE a.currency <> e.currency ORDER BY p.id LIMIT {PROBLEMS_NAMED}"
        )
        rows = cursor.fetchall()
        problems += [
            f"entry {_uid(e)} posts to account {_uid(a)} in another currency"
            for e, a in rows[:PROBLEMS_NAMED]
        ]

        cursor.execute(
            f"SELECT a.public_id, a.kind, a.balance, COALESCE(s.total, 0) FROM {account} a "  # noqa: S608
            f"LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {posting} GROUP BY account_id) s "
            f"ON s.account_id = a.id WHERE a.balance <> COALESCE(s.total, 0) ORDER BY a.id LIMIT {PROBLEMS_NAMED + 1}"
        )
        rows = cursor.fetchall()
        problems += [
            f"account {_uid(public_id)} ({kind}) caches {balance} but its postings sum to {total}"
            for public_id, kind, balance, total in rows[:PROBLEMS_NAMED]
        ]
        if len(rows) > PROBLEMS_NAMED:
            problems.append("... and more accounts whose balance differs from postings")

        placeholders = ", ".join(["%s"] * len(customer))
        cursor.execute(
            f"SELECT public_id, kind, balance FROM {account} "  # noqa: S608
            f"WHERE kind IN ({placeholders}) AND balance < 0 ORDER BY id LIMIT {PROBLEMS_NAMED}",
            customer,
        )
        rows = cursor.fetchall()
        problems += [
            f"account {_uid(public_id)} ({kind}) is negative: {balance}"
            for public_id, kind, balance in rows
        ]
    return problems


# --- payments ----------------------------------------------------------------------


def wallet_history_for_payer(
    *, payer: Payer, before_id: int | None = None, limit: int = HISTORY_PAGE
) -> list[dict]:
    """The wallet's movements for the payer's app, newest first: what, how
    much (signed fen), where (merchant name), when, and the keyset cursor."""
    postings = ledger_history_for_payer(payer=payer, before_id=before_id, limit=limit)
    merchant_ids = {p.entry.merchant_id for p in postings if p.entry.merchant_id}
    names = dict(Merchant.objects.filter(pk__in=merchant_ids).values_list("pk", "name"))
    return [
        {
            "cursor": p.pk,
            "kind": p.entry.kind,
            "amount": p.amount,
            "currency": p.entry.currency,
            "merchant": names.get(p.entry.merchant_id),
            "at": p.entry.created_at.isoformat(),
        }
        for p in postings
    ]


@dataclass(frozen=True)
class PaymentFilters:
    """The list's filters, all optional (from the page's query string)."""

    date_from: date | None = None  # Asia/Shanghai calendar days, inclusive
    date_to: date | None = None
    terminal: uuid.UUID | None = None
    status: str = ""
    amount_min: int | None = None  # fen
    amount_max: int | None = None


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def payment_cursor(payment: Payment) -> str:
    """The keyset position after `payment`: its (created_at, id)."""
    return f"{payment.created_at.timestamp():.6f}_{payment.pk}"


def payment_list_for_merchant(
    *, merchant: Merchant, filters: PaymentFilters, after: str = "", limit: int = 50
) -> tuple[list[Payment], str | None]:
    """One page of the merchant's payments, newest first, and the cursor of
    the next page (None on the last). Keyset pagination on (created_at, id):
    no OFFSET and no COUNT, so page 10,000 costs what page 1 costs, on the
    indexes payment_merchant_recent / _terminal_recent / _status_recent."""
    rows = Payment.objects.for_merchant(merchant).select_related("terminal", "payer__user")
    if filters.date_from:
        rows = rows.filter(created_at__gte=_local_midnight(filters.date_from))
    if filters.date_to:
        rows = rows.filter(created_at__lt=_local_midnight(filters.date_to + timedelta(days=1)))
    if filters.terminal:
        rows = rows.filter(terminal__public_id=filters.terminal)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.amount_min is not None:
        rows = rows.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        rows = rows.filter(amount__lte=filters.amount_max)
    if after:
        try:
            stamp, _sep, pk = after.partition("_")
            at = datetime.fromtimestamp(float(stamp), tz=UTC)
            pk_int = int(pk)
        except ValueError:
            at, pk_int = None, None
        if at is not None:
            rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk_int))
    page = list(rows.order_by("-created_at", "-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (payment_cursor(page[-1]) if more and page else None)


def payment_for_merchant(*, merchant: Merchant, public_id: Any) -> Payment | None:
    """The merchant's payment, or None (also for another merchant's)."""
    return (
        Payment.objects.for_merchant(merchant)
        .select_related("terminal", "shop", "operator__user", "payer__user")
        .filter(public_id=public_id)
        .first()
    )


def payment_entries(payment: Payment) -> list[JournalEntry]:
    """Every entry of a payment, oldest first, with postings: its own
    (payment or hold), and the hold's release/return, its refunds, its
    reversal (which name the original entry)."""
    own = list(
        JournalEntry.objects.filter(
            event_type="transactions.payment", event_id=str(payment.public_id)
        )
    )
    entries = JournalEntry.objects.filter(Q(pk__in=[e.pk for e in own]) | Q(original__in=own))
    # A refund of a released hold names the release, not the hold.
    releases = JournalEntry.objects.filter(original__in=own, kind=EntryKind.HOLD_RELEASE)
    entries = entries | JournalEntry.objects.filter(original__in=releases)
    return list(entries.distinct().prefetch_related("postings__account").order_by("id"))


def payer_masked(payer: Payer) -> str:
    """How a merchant sees a payer: 张* (name) and ****1234 (wallet id)."""
    from apps.accounts.masking import mask_name, mask_tail

    name = mask_name(getattr(payer.user, "display_name", "") or "")
    tail = mask_tail(payer.public_id.hex)
    return f"{name} {tail}".strip()


@dataclass
class StatementDay:
    """One day's settlement statement of a merchant (minor units)."""

    day: date
    currency: str
    payments: int = 0
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    reversals: int = 0
    withdrawals: int = 0

    @property
    def net(self) -> int:
        """What the day added to the settlement account (before withdrawals)."""
        return self.gross - self.fees - self.refunds - self.reversals

    def money(self, name: str) -> Money:
        return Money(getattr(self, name), self.currency)


def statement_days(
    *, merchant: Merchant, date_from: date, date_to: date, currency: str = "CNY"
) -> list[StatementDay]:
    """The settlement statement per Asia/Shanghai day from the ledger itself:
    gross (sales, incl. released holds), fees (net of fees given back on
    refunds), refunds and reversals (what went back to payers), net. One
    aggregate over the merchant's entries (index ledger_entry_merchant_day)."""
    tz = ZoneInfo(settings.TIME_ZONE)
    rows = (
        Posting.objects.filter(
            entry__merchant=merchant,
            entry__currency=currency,
            entry__created_at__gte=_local_midnight(date_from),
            entry__created_at__lt=_local_midnight(date_to + timedelta(days=1)),
            account__kind__in=(AccountKind.MERCHANT_SETTLEMENT, AccountKind.FEE_REVENUE),
        )
        .annotate(day=TruncDate("entry__created_at", tzinfo=tz))
        .values("day", "entry__kind", "account__kind")
        .annotate(total=Sum("amount"), entries=Count("entry", distinct=True))
    )
    days: dict[date, StatementDay] = {}
    for row in rows:
        day = days.setdefault(row["day"], StatementDay(row["day"], currency))
        kind, account, total = row["entry__kind"], row["account__kind"], row["total"] or 0
        is_fee = account == AccountKind.FEE_REVENUE
        if kind in (EntryKind.PAYMENT, EntryKind.HOLD_RELEASE):
            day.gross += total
            if is_fee:
                day.fees += total
            else:
                day.payments += row["entries"]
        elif kind == EntryKind.REFUND:
            day.refunds -= total
            if is_fee:
                day.fees += total  # the fee given back on the refunded share
        elif kind == EntryKind.REVERSAL:
            day.reversals -= total
            if is_fee:
                day.fees += total
        elif kind == EntryKind.WITHDRAWAL and not is_fee:
            day.withdrawals -= total
    return [days[d] for d in sorted(days, reverse=True)]

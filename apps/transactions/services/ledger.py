"""Writes of the ledger and payment codes.

`ledger_post` is the one way money moves; the business services below build
its lines. Public business actions (`wallet_top_up`, `merchant_withdraw`,
`ledger_account_freeze`) own a durable transaction and write their audit
record. The `ledger_*` helpers for payments, holds, refunds and reversals run
inside the payment service's transaction (they nest as a savepoint) and audit
only when given `audit_action`: the payment service normally audits the
payment itself, before calling them (see the lock order in locks.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import Merchant, Payer, PaymentPassword
from apps.audit.services import audit_record
from apps.core.db import WriteBatch, reader
from apps.core.money import Money
from apps.transactions.errors import (
    CorrectionRefused,
    DuplicateLedgerEvent,
    PayerNotVerified,
    PaymentCodeExpired,
    PaymentCodeUnknown,
    PaymentCodeUsed,
    UnbalancedEntry,
)
from apps.transactions.locks import journal_entry_lock, ledger_balances_apply
from apps.transactions.models import (
    CONCLUDING_KINDS,
    FEE_REVENUE_SLOTS,
    PLATFORM_KINDS,
    AccountKind,
    EntryKind,
    JournalEntry,
    LedgerAccount,
    PaymentCode,
    Posting,
)

# A business event: a model instance (its label and public id are stored) or
# an explicit (event_type, event_id) pair.
Event = models.Model | tuple[str, str] | None
Line = tuple[LedgerAccount, int]


# --- accounts ----------------------------------------------------------------


def ledger_account_for_payer(*, payer: Payer, currency: str = "CNY") -> LedgerAccount:
    """The payer's wallet account, created on first use. Two first payments
    racing here both end with the same row: the loser's INSERT hits the
    unique constraint and get_or_create reads the winner's row."""
    account, _created = LedgerAccount.objects.get_or_create(
        kind=AccountKind.PAYER_WALLET, payer=payer, currency=currency
    )
    return account


def ledger_account_for_merchant(*, merchant: Merchant, currency: str = "CNY") -> LedgerAccount:
    """The merchant's settlement account, created on first use (race-safe)."""
    account, _created = LedgerAccount.objects.get_or_create(
        kind=AccountKind.MERCHANT_SETTLEMENT, merchant=merchant, currency=currency
    )
    return account


def ledger_platform_account(*, kind: str, currency: str = "CNY", slot: int = 0) -> LedgerAccount:
    """The platform's account of `kind` (fee revenue, risk hold, external
    clearing) for the currency, created on first use (race-safe). Only fee
    revenue has slots (models.FEE_REVENUE_SLOTS)."""
    if kind not in PLATFORM_KINDS:
        raise ValueError(f"{kind!r} is not a platform account kind")
    account, _created = LedgerAccount.objects.get_or_create(kind=kind, currency=currency, slot=slot)
    return account


def _fee_revenue_account(currency: str) -> LedgerAccount:
    # A random slot, so concurrent payments rarely meet on one row.
    slot = secrets.randbelow(FEE_REVENUE_SLOTS)
    return ledger_platform_account(kind=AccountKind.FEE_REVENUE, currency=currency, slot=slot)


# --- the one posting primitive -----------------------------------------------


def _event_ref(event: Event) -> tuple[str, str]:
    if event is None:
        return "", ""
    if isinstance(event, tuple):
        event_type, event_id = str(event[0]), str(event[1])
    else:
        event_type, event_id = (
            event._meta.label_lower,
            str(getattr(event, "public_id", None) or event.pk),
        )
    # Never truncate: two long ids cut to one would look like a duplicate.
    if len(event_type) > 80 or len(event_id) > 64:
        raise ValueError("event type or id too long (80 / 64 characters)")
    return event_type, event_id


def _validated(lines: Sequence[Line], currency: str) -> list[Line]:
    lines = [(account, amount) for account, amount in lines if amount != 0]
    if len(lines) < 2:
        raise UnbalancedEntry("an entry needs at least two non-zero lines")
    if any(type(amount) is not int for _account, amount in lines):
        raise UnbalancedEntry("amounts are integers of minor units")
    if sum(amount for _account, amount in lines) != 0:
        raise UnbalancedEntry("an entry's lines must sum to zero")
    if any(account.currency != currency for account, _amount in lines):
        raise UnbalancedEntry(f"every account of the entry must be in {currency}")
    if len({account.pk for account, _amount in lines}) != len(lines):
        raise UnbalancedEntry("one line per account")
    if any(account.pk is None for account, _amount in lines):
        raise UnbalancedEntry("accounts must be saved")
    return lines


def _entry_new(
    kind: str,
    currency: str,
    merchant: Merchant | None,
    event_type: str,
    event_id: str,
    idempotency_key: str,
    original: JournalEntry | None,
    memo: str,
) -> JournalEntry:
    return JournalEntry(
        kind=kind,
        currency=currency,
        merchant=merchant,
        event_type=event_type,
        event_id=event_id,
        idempotency_key=idempotency_key,
        original=original,
        memo=memo[:500],
    )


def _entry_audit(
    entry: JournalEntry,
    lines: Sequence[Line],
    action: str,
    actor: Any,
    audit_data: dict | None,
    request: HttpRequest | None,
    *,
    batch: WriteBatch | None = None,
) -> None:
    audit_record(
        action=action,
        actor=actor,
        merchant=entry.merchant,
        target=entry,
        data={
            "kind": entry.kind,
            "currency": entry.currency,
            "lines": [[str(a.public_id), a.kind, x] for a, x in lines],
            **(audit_data or {}),
        },
        request=request,
        batch=batch,
    )


def ledger_post(
    *,
    kind: str,
    lines: Sequence[Line],
    currency: str = "CNY",
    event: Event = None,
    idempotency_key: str = "",
    merchant: Merchant | None = None,
    original: JournalEntry | None = None,
    memo: str = "",
    audit_action: str | None = None,
    actor: Any = None,
    audit_data: dict | None = None,
    request: HttpRequest | None = None,
    batch: WriteBatch | None = None,
) -> JournalEntry:
    """Writes one journal entry with its postings and changes the cached
    balances, all or nothing. `lines` are (account, signed amount) pairs
    summing to zero. Order matters (locks.py): entry and postings are plain
    INSERTs, the audit record (when `audit_action` is given) takes its chain
    head, and the account rows are updated last, in primary-key order.

    Raises InsufficientFunds / AccountFrozen (nothing is written),
    DuplicateLedgerEvent when this event or idempotency key already posted an
    entry of this kind, UnbalancedEntry for invalid lines.

    With `batch` (the payment service's), the entry, its postings, its
    audit record and the balance change are left in the batch, the balance
    change last; the errors above are then raised when the batch executes
    (a duplicate as IntegrityError), and the caller's transaction, holding
    a half-written batch, MUST roll back."""
    lines = _validated(lines, currency)
    event_type, event_id = _event_ref(event)
    if batch is not None:
        entry = _entry_new(
            kind, currency, merchant, event_type, event_id, idempotency_key, original, memo
        )
        batch.insert(entry)
        for account, amount in lines:
            batch.insert(Posting(entry=entry, account=account, amount=amount))
        if audit_action:
            _entry_audit(entry, lines, audit_action, actor, audit_data, request, batch=batch)
        ledger_balances_apply(lines, batch=batch)
        return entry
    try:
        with transaction.atomic():
            entry = _entry_new(
                kind, currency, merchant, event_type, event_id, idempotency_key, original, memo
            )
            entry.save(force_insert=True)
            Posting.objects.bulk_create(Posting(entry=entry, account=a, amount=x) for a, x in lines)
            if audit_action:
                _entry_audit(entry, lines, audit_action, actor, audit_data, request)
            ledger_balances_apply(lines)
    except IntegrityError as exc:
        text = str(exc)
        # PostgreSQL names the constraint, SQLite the table and columns.
        if (
            "duplicate key" in text and "ledger_entry_" in text
        ) or "UNIQUE constraint failed: transactions_journalentry" in text:
            raise DuplicateLedgerEvent(
                f"{kind} already posted for event {event_type}:{event_id} / key {idempotency_key!r}"
            ) from exc
        raise
    return entry


# --- payer funds ---------------------------------------------------------------


def _positive(amount: Money) -> None:
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise ValueError("the amount must be a positive Money")


def wallet_top_up(
    *,
    payer: Payer,
    amount: Money,
    reason: str,
    actor: Any,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Funds a payer's wallet from a bank (simulated: external clearing →
    wallet). Compliance posts these from the admin with a reason."""
    _positive(amount)
    if not reason.strip():
        raise ValueError("a top-up needs a reason")
    with transaction.atomic(durable=True):
        wallet = ledger_account_for_payer(payer=payer, currency=amount.currency)
        clearing = ledger_platform_account(
            kind=AccountKind.EXTERNAL_CLEARING, currency=amount.currency
        )
        return ledger_post(
            kind=EntryKind.TOP_UP,
            lines=[(clearing, -amount.amount), (wallet, amount.amount)],
            currency=amount.currency,
            # The bank funding is the event; in this simulation it has no id
            # of its own, so the idempotency key (or a fresh id) names it.
            event=("bank.funding", idempotency_key or uuid.uuid4().hex),
            idempotency_key=idempotency_key,
            memo=reason,
            audit_action="ledger.wallet_top_up",
            actor=actor,
            audit_data={"payer": str(payer.public_id), "amount": amount.amount, "reason": reason},
            request=request,
        )


def merchant_withdraw(
    *,
    merchant: Merchant,
    amount: Money,
    actor: Any,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Pays settlement balance out to the merchant's bank account
    (settlement → external clearing). The caller checks the owner's role and
    OTP step-up; this refuses more than the balance (InsufficientFunds)."""
    _positive(amount)
    with transaction.atomic(durable=True):
        settlement = ledger_account_for_merchant(merchant=merchant, currency=amount.currency)
        clearing = ledger_platform_account(
            kind=AccountKind.EXTERNAL_CLEARING, currency=amount.currency
        )
        return ledger_post(
            kind=EntryKind.WITHDRAWAL,
            lines=[(settlement, -amount.amount), (clearing, amount.amount)],
            currency=amount.currency,
            event=("bank.payout", idempotency_key or uuid.uuid4().hex),
            idempotency_key=idempotency_key,
            merchant=merchant,
            audit_action="ledger.merchant_withdraw",
            actor=actor,
            audit_data={"amount": amount.amount},
            request=request,
        )


def ledger_account_freeze(
    *,
    account: LedgerAccount,
    frozen: bool,
    reason: str,
    actor: Any,
    request: HttpRequest | None = None,
) -> LedgerAccount:
    """Freezes (or unfreezes) an account: a frozen account refuses debits,
    credits still land. Used by compliance and the risk balance monitor (not
    durable: the monitor freezes inside its own alert transaction)."""
    with transaction.atomic():
        LedgerAccount.objects.filter(pk=account.pk).update(frozen=frozen)
        account.frozen = frozen
        audit_record(
            action="ledger.account_frozen" if frozen else "ledger.account_unfrozen",
            actor=actor,
            merchant=account.merchant,
            target=account,
            data={"reason": reason, "kind": account.kind},
            request=request,
        )
    return account


# --- payments, holds, refunds, reversals (inside the payment service) ----------


def _fee(merchant: Merchant, amount: Money) -> int:
    return amount.fee(merchant.discount_rate_bp).amount


def ledger_payment_transfer(
    *,
    payer: Payer,
    merchant: Merchant,
    amount: Money,
    event: Event,
    idempotency_key: str = "",
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
    wallet: LedgerAccount | None = None,
    settlement: LedgerAccount | None = None,
    revenue: LedgerAccount | None = None,
    batch: WriteBatch | None = None,
) -> JournalEntry:
    """An approved payment: payer → merchant, minus the merchant discount
    rate (Money.fee, rounded half up) to fee revenue. One entry. `wallet`,
    `settlement`, `revenue`: the accounts when the caller already read them
    (payment_code_spend does); `batch`: see ledger_post."""
    _positive(amount)
    fee = _fee(merchant, amount)
    if wallet is None or wallet.payer_id != payer.pk or wallet.currency != amount.currency:
        wallet = ledger_account_for_payer(payer=payer, currency=amount.currency)
    if settlement is None:
        settlement = ledger_account_for_merchant(merchant=merchant, currency=amount.currency)
    if revenue is None:
        revenue = _fee_revenue_account(amount.currency)
    return ledger_post(
        kind=EntryKind.PAYMENT,
        lines=[(wallet, -amount.amount), (settlement, amount.amount - fee), (revenue, fee)],
        currency=amount.currency,
        event=event,
        idempotency_key=idempotency_key,
        merchant=merchant,
        audit_action=audit_action,
        actor=actor,
        request=request,
        batch=batch,
    )


def ledger_hold_place(
    *,
    payer: Payer,
    merchant: Merchant,
    amount: Money,
    event: Event,
    idempotency_key: str = "",
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
    wallet: LedgerAccount | None = None,
    hold: LedgerAccount | None = None,
    batch: WriteBatch | None = None,
) -> JournalEntry:
    """A payment held for review: payer → risk hold, the whole amount. The
    entry names the merchant it is meant for; release or return it later.
    `wallet`, `hold`, `batch`: as for ledger_payment_transfer."""
    _positive(amount)
    if wallet is None or wallet.payer_id != payer.pk or wallet.currency != amount.currency:
        wallet = ledger_account_for_payer(payer=payer, currency=amount.currency)
    if hold is None:
        hold = ledger_platform_account(kind=AccountKind.RISK_HOLD, currency=amount.currency)
    return ledger_post(
        kind=EntryKind.HOLD,
        lines=[(wallet, -amount.amount), (hold, amount.amount)],
        currency=amount.currency,
        event=event,
        idempotency_key=idempotency_key,
        merchant=merchant,
        audit_action=audit_action,
        actor=actor,
        request=request,
        batch=batch,
    )


def _held(hold_entry: JournalEntry) -> tuple[Posting, Posting]:
    """The (wallet, risk hold) postings of a hold entry."""
    if hold_entry.kind != EntryKind.HOLD:
        raise CorrectionRefused("not_a_hold", "only a hold entry can be released or returned")
    postings = {p.account.kind: p for p in hold_entry.postings.select_related("account")}
    return postings[AccountKind.PAYER_WALLET], postings[AccountKind.RISK_HOLD]


def _conclude_guard(original: JournalEntry) -> JournalEntry:
    """Locks the original and refuses when a release, return or reversal
    already concluded it (the unique constraint would refuse too; this gives
    the clear error without a failed INSERT)."""
    locked = journal_entry_lock(original)
    if JournalEntry.objects.filter(original=locked, kind__in=CONCLUDING_KINDS).exists():
        raise CorrectionRefused(
            "already_concluded", "this entry was already released, returned or reversed"
        )
    return locked


def ledger_hold_release(
    *,
    hold_entry: JournalEntry,
    event: Event = None,
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Compliance approved a held payment: risk hold → the merchant, minus
    the fee at the merchant's current rate. Once per hold."""
    with transaction.atomic():
        hold_entry = _conclude_guard(hold_entry)
        _wallet_posting, hold_posting = _held(hold_entry)
        merchant = hold_entry.merchant
        if merchant is None:
            raise CorrectionRefused("not_a_hold", "the hold names no merchant")
        amount = Money(hold_posting.amount, hold_entry.currency)
        fee = _fee(merchant, amount)
        settlement = ledger_account_for_merchant(merchant=merchant, currency=amount.currency)
        revenue = _fee_revenue_account(amount.currency)
        return ledger_post(
            kind=EntryKind.HOLD_RELEASE,
            lines=[
                (hold_posting.account, -amount.amount),
                (settlement, amount.amount - fee),
                (revenue, fee),
            ],
            currency=amount.currency,
            event=event,
            merchant=merchant,
            original=hold_entry,
            audit_action=audit_action,
            actor=actor,
            request=request,
        )


def ledger_hold_return(
    *,
    hold_entry: JournalEntry,
    event: Event = None,
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Compliance rejected a held payment: risk hold → back to the payer's
    wallet, the whole amount. Once per hold."""
    with transaction.atomic():
        hold_entry = _conclude_guard(hold_entry)
        wallet_posting, hold_posting = _held(hold_entry)
        return ledger_post(
            kind=EntryKind.HOLD_RETURN,
            lines=[
                (hold_posting.account, -hold_posting.amount),
                (wallet_posting.account, hold_posting.amount),
            ],
            currency=hold_entry.currency,
            event=event,
            merchant=hold_entry.merchant,
            original=hold_entry,
            audit_action=audit_action,
            actor=actor,
            request=request,
        )


def _sale_parts(original: JournalEntry) -> tuple[LedgerAccount, LedgerAccount, int, int]:
    """(payer wallet, merchant settlement, gross, fee) of a completed sale: a
    payment entry, or a hold release (whose payer is on its hold entry)."""
    if original.kind not in (EntryKind.PAYMENT, EntryKind.HOLD_RELEASE):
        raise CorrectionRefused(
            "not_refundable", "only a payment or a released hold can be refunded"
        )
    by_kind = {p.account.kind: p for p in original.postings.select_related("account")}
    fee_posting = by_kind.get(AccountKind.FEE_REVENUE)
    fee = fee_posting.amount if fee_posting else 0
    settlement_posting = by_kind.get(AccountKind.MERCHANT_SETTLEMENT)
    if settlement_posting is not None:
        settlement, net = settlement_posting.account, settlement_posting.amount
    else:  # a 100% fee leaves no settlement line
        assert original.merchant is not None
        settlement, net = (
            ledger_account_for_merchant(merchant=original.merchant, currency=original.currency),
            0,
        )
    if original.kind == EntryKind.PAYMENT:
        wallet = by_kind[AccountKind.PAYER_WALLET].account
    else:
        assert original.original is not None
        wallet = _held(original.original)[0].account
    return wallet, settlement, net + fee, fee


def _refund_fee(*, fee: int, gross: int, refunded_before: int, refund: int) -> int:
    """The fee share of a refund. Computed on the cumulative refunded amount
    (rounded half up each time), so partial refunds that add up to the whole
    payment give back exactly the whole fee, never a fen more or less."""

    def share(refunded: int) -> int:
        return (fee * refunded * 2 + gross) // (2 * gross)

    return share(refunded_before + refund) - share(refunded_before)


def ledger_refund(
    *,
    original: JournalEntry,
    amount: Money,
    event: Event,
    idempotency_key: str = "",
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Refunds all or part of a completed sale: the payer gets `amount` back;
    the merchant's settlement pays `amount` minus the proportional fee, and
    fee revenue gives back that proportional fee (the platform does not keep
    a fee on money that was returned). Refunds of one sale are serialised on
    the original entry's row lock; never more than what is left."""
    _positive(amount)
    with transaction.atomic():
        original = journal_entry_lock(original)
        if original.currency != amount.currency:
            raise CorrectionRefused("currency_mismatch", "refund in the payment's currency")
        if original.corrections.filter(kind=EntryKind.REVERSAL).exists():
            raise CorrectionRefused("already_reversed", "a reversed payment cannot be refunded")
        wallet, settlement, gross, fee = _sale_parts(original)
        refunded_before = (
            Posting.objects.filter(
                entry__original=original, entry__kind=EntryKind.REFUND, account=wallet
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        if refunded_before + amount.amount > gross:
            raise CorrectionRefused(
                "refund_exceeds_remaining",
                f"only {gross - refunded_before} of {gross} is left to refund",
            )
        fee_back = _refund_fee(
            fee=fee, gross=gross, refunded_before=refunded_before, refund=amount.amount
        )
        revenue = _fee_revenue_account(amount.currency)
        return ledger_post(
            kind=EntryKind.REFUND,
            lines=[
                (settlement, -(amount.amount - fee_back)),
                (revenue, -fee_back),
                (wallet, amount.amount),
            ],
            currency=amount.currency,
            event=event,
            idempotency_key=idempotency_key,
            merchant=original.merchant,
            original=original,
            audit_action=audit_action,
            actor=actor,
            request=request,
        )


def ledger_reverse(
    *,
    original: JournalEntry,
    event: Event = None,
    memo: str = "",
    audit_action: str | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> JournalEntry:
    """Undoes an entry with its exact opposite (a void, or a payment whose
    answer the terminal never got). Once per entry; refused when the entry
    was already refunded or concluded, and for a reversal itself. Debits of
    customer money are checked as always: a merchant that already withdrew
    the money cannot be reversed into a negative balance."""
    with transaction.atomic():
        original = _conclude_guard(original)
        if original.kind == EntryKind.REVERSAL:
            raise CorrectionRefused(
                "not_reversible", "a reversal cannot be reversed; post a new entry"
            )
        if original.corrections.exists():
            raise CorrectionRefused(
                "already_corrected", "refunded or settled entries cannot be reversed"
            )
        lines = [(p.account, -p.amount) for p in original.postings.select_related("account")]
        return ledger_post(
            kind=EntryKind.REVERSAL,
            lines=lines,
            currency=original.currency,
            event=event,
            merchant=original.merchant,
            original=original,
            memo=memo,
            audit_action=audit_action,
            actor=actor,
            request=request,
        )


# --- payment codes -----------------------------------------------------------

PAYMENT_CODE_TTL = timedelta(seconds=60)
# Terminals route a scanned code to its wallet by the leading digits, as with
# the big wallets' 18-digit codes; ours start with these two.
PAYMENT_CODE_PREFIX = "29"
PAYMENT_CODE_DIGITS = 18


def payment_code_hash(code: str) -> str:
    """Keyed hash of a clear code (domain-separated from other blind indexes)."""
    key = settings.BLIND_INDEX_KEY.encode()
    return hmac.new(key, b"payment-code:" + code.encode(), hashlib.sha256).hexdigest()


def _payer_may_pay(payer: Payer) -> None:
    if payer.account_class == Payer.AccountClass.UNVERIFIED:
        raise PayerNotVerified("the payer has not completed real-name verification")


def payment_code_issue(*, payer: Payer) -> PaymentCode:
    """A fresh single-use code for the payer's wallet, valid 60 s. Only its
    keyed hash is stored; the clear code is on the returned `.code`, once.
    16 random digits after the prefix: 10^16 guesses for a 60-second code."""
    _payer_may_pay(payer)
    random_digits = PAYMENT_CODE_DIGITS - len(PAYMENT_CODE_PREFIX)
    for _attempt in range(5):
        code = PAYMENT_CODE_PREFIX + f"{secrets.randbelow(10**random_digits):0{random_digits}d}"
        now = timezone.now()
        try:
            # The savepoint keeps a caller's transaction usable after the
            # (astronomically rare) collision with a stored hash.
            with transaction.atomic():
                payment_code = PaymentCode.objects.create(
                    payer=payer,
                    code_hash=payment_code_hash(code),
                    created_at=now,
                    expires_at=now + PAYMENT_CODE_TTL,
                )
        except IntegrityError:
            continue
        payment_code.code = code
        return payment_code
    raise RuntimeError("could not draw an unused payment code")


@dataclass
class PaymentFunds:
    """What payment_code_spend read with the spend: the code's payer, its
    payment password (for the lock) and, as committed
    now, the payer's wallet and the accounts the payment may credit (None:
    not created yet; the ledger creates it). Unlocked reads: the ledger's
    conditional debit is what guarantees the balance."""

    payment_code_id: int
    payer: Payer
    password: PaymentPassword | None = None
    wallet: LedgerAccount | None = None
    settlement: LedgerAccount | None = None
    revenue: LedgerAccount | None = None
    hold: LedgerAccount | None = None


@lru_cache(maxsize=8)
def _funds_select(spent: str, vendor: str) -> str:
    """The SELECT of a spend's payer and accounts, from `spent` (a relation
    with the spent code's id and payer_id). (`vendor`: the database's, as
    the column quoting is.)"""
    payer, wallet, password = (
        reader(Payer, "p"),
        reader(LedgerAccount, "w"),
        reader(PaymentPassword, "pw"),
    )
    settlement, revenue, hold = (
        reader(LedgerAccount, "s"),
        reader(LedgerAccount, "f"),
        reader(LedgerAccount, "h"),
    )
    accounts = LedgerAccount._meta.db_table
    passwords = password.table
    return (
        f"SELECT spent.id, {password.columns}, {payer.columns}, {wallet.columns}, "  # noqa: S608 (our tables)
        f"{settlement.columns}, {revenue.columns}, {hold.columns} FROM {spent} "
        f"JOIN {payer.table} p ON p.id = spent.payer_id "
        f"LEFT JOIN {passwords} pw ON pw.payer_id = p.id "
        f"LEFT JOIN {accounts} w ON w.kind = %s AND w.payer_id = p.id AND w.currency = %s "
        f"LEFT JOIN {accounts} s ON s.kind = %s AND s.merchant_id = %s AND s.currency = %s "
        f"LEFT JOIN {accounts} f ON f.kind = %s AND f.currency = %s AND f.slot = %s "
        f"LEFT JOIN {accounts} h ON h.kind = %s AND h.currency = %s AND h.slot = 0"
    )


def _funds_params(merchant_id: int | None, currency: str, slot: int) -> list[Any]:
    return [
        AccountKind.PAYER_WALLET,
        currency,
        AccountKind.MERCHANT_SETTLEMENT,
        merchant_id,
        currency,
        AccountKind.FEE_REVENUE,
        currency,
        slot,
        AccountKind.RISK_HOLD,
        currency,
    ]


def _funds_read(row: Sequence[Any]) -> PaymentFunds:
    password, payer = reader(PaymentPassword, "pw"), reader(Payer, "p")
    accounts = reader(LedgerAccount, "w")
    offset = 1 + password.width + payer.width
    found = [accounts.read(row, offset + i * accounts.width) for i in range(4)]
    return PaymentFunds(
        row[0],
        payer.read(row, 1 + password.width),  # type: ignore[arg-type]
        password.read(row, 1),  # type: ignore[arg-type]
        *found,  # type: ignore[arg-type]
    )


def payment_code_spend(
    *, code: str, merchant_id: int | None = None, currency: str = "CNY"
) -> PaymentFunds:
    """Spends a code: one conditional UPDATE, so of any number of terminals
    presenting the same code exactly one gets the payer. It refuses an
    unverified payer in its WHERE (so a refused code is never spent) and
    reads what the payment needs next (PaymentFunds; the accounts of
    `merchant_id` and `currency`) in the same statement on PostgreSQL, in a
    second one elsewhere. Runs in the caller's transaction (a payment that
    rolls back gives the code back). Raises PaymentCodeUnknown /
    PaymentCodeExpired / PaymentCodeUsed / PayerNotVerified."""
    code_hash = payment_code_hash(str(code).strip())
    now = timezone.now()
    ops = connection.ops
    codes, payers = PaymentCode._meta.db_table, Payer._meta.db_table
    spend = (
        f"UPDATE {codes} SET consumed_at = %s WHERE code_hash = %s AND consumed_at IS NULL "  # noqa: S608
        f"AND expires_at > %s AND payer_id IN (SELECT id FROM {payers} WHERE account_class <> %s) "
        "RETURNING id, payer_id"
    )
    spend_params = [
        ops.adapt_datetimefield_value(now),
        code_hash,
        ops.adapt_datetimefield_value(now),
        Payer.AccountClass.UNVERIFIED,
    ]
    funds_params = _funds_params(merchant_id, currency, secrets.randbelow(FEE_REVENUE_SLOTS))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH spent AS ({spend}) {_funds_select('spent', connection.vendor)}",
                spend_params + funds_params,
            )
            row = cursor.fetchone()
        else:
            cursor.execute(spend, spend_params)
            spent = cursor.fetchone()
            row = None
            if spent is not None:
                cursor.execute(
                    _funds_select("(SELECT %s AS id, %s AS payer_id) spent", connection.vendor),
                    [*spent, *funds_params],
                )
                row = cursor.fetchone()
    if row is not None:
        return _funds_read(row)
    # Nothing spent: tell why.
    payment_code = PaymentCode.objects.select_related("payer").filter(code_hash=code_hash).first()
    if payment_code is None:
        raise PaymentCodeUnknown("no such payment code")
    if payment_code.consumed_at is not None:
        raise PaymentCodeUsed("this payment code was already used")
    if payment_code.expires_at <= now:
        raise PaymentCodeExpired("this payment code has expired")
    _payer_may_pay(payment_code.payer)
    raise PaymentCodeUsed("this payment code was already used")  # spent in between


def payment_funds_read(*, payer_id: int, merchant_id: int, currency: str) -> PaymentFunds:
    """PaymentFunds of a payer whose code was spent already (a step-up
    payment's second decision), as committed now; payment_code_id is None."""
    params = _funds_params(merchant_id, currency, secrets.randbelow(FEE_REVENUE_SLOTS))
    with connection.cursor() as cursor:
        cursor.execute(
            _funds_select("(SELECT NULL AS id, %s AS payer_id) spent", connection.vendor),
            [payer_id, *params],
        )
        return _funds_read(cursor.fetchone())


def payment_code_consume(*, code: str) -> Payer:
    """payment_code_spend for a caller that needs only the payer."""
    return payment_code_spend(code=code).payer


def payment_code_purge_expired(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Deletes codes expired for a while (they only ever fail to consume).
    Keeps the hash index small and collisions of new codes impossible."""
    with transaction.atomic(durable=True):
        deleted, _ = PaymentCode.objects.filter(expires_at__lt=timezone.now() - older_than).delete()
    return deleted

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
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import Merchant, Payer
from apps.audit.services import audit_record
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
    savepoint: bool = True,
) -> JournalEntry:
    """Writes one journal entry with its postings and changes the cached
    balances, all or nothing. `lines` are (account, signed amount) pairs
    summing to zero. Order matters (locks.py): entry and postings are plain
    INSERTs, the audit record (when `audit_action` is given) takes its chain
    head, and the account rows are updated last, in primary-key order.

    Raises InsufficientFunds / AccountFrozen (nothing is written),
    DuplicateLedgerEvent when this event or idempotency key already posted an
    entry of this kind, UnbalancedEntry for invalid lines.

    `savepoint=False` (inside a caller's transaction that rolls back as a
    whole on any of these errors, like the payment service's) saves the
    SAVEPOINT / RELEASE round trips, the RELEASE being one more round trip
    while the hot account rows are locked. After an error the caller's
    transaction then holds a half-written entry: it MUST roll back."""
    lines = _validated(lines, currency)
    event_type, event_id = _event_ref(event)
    try:
        with transaction.atomic(savepoint=savepoint):
            entry = JournalEntry(
                kind=kind,
                currency=currency,
                merchant=merchant,
                event_type=event_type,
                event_id=event_id,
                idempotency_key=idempotency_key,
                original=original,
                memo=memo[:500],
            )
            entry.save(force_insert=True)
            Posting.objects.bulk_create(Posting(entry=entry, account=a, amount=x) for a, x in lines)
            if audit_action:
                audit_record(
                    action=audit_action,
                    actor=actor,
                    merchant=merchant,
                    target=entry,
                    data={
                        "kind": kind,
                        "currency": currency,
                        "lines": [[str(a.public_id), a.kind, x] for a, x in lines],
                        **(audit_data or {}),
                    },
                    request=request,
                )
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
    savepoint: bool = True,
) -> JournalEntry:
    """An approved payment: payer → merchant, minus the merchant discount
    rate (Money.fee, rounded half up) to fee revenue. One entry. `wallet`:
    the payer's wallet account when the caller already read it;
    `savepoint`: see ledger_post."""
    _positive(amount)
    fee = _fee(merchant, amount)
    # No transaction.atomic here: ledger_post opens the one block (or
    # savepoint) the entry needs, and one savepoint fewer is one round trip
    # fewer while the hot rows are locked. Account creation is idempotent.
    if wallet is None or wallet.payer_id != payer.pk or wallet.currency != amount.currency:
        wallet = ledger_account_for_payer(payer=payer, currency=amount.currency)
    settlement = ledger_account_for_merchant(merchant=merchant, currency=amount.currency)
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
        savepoint=savepoint,
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
) -> JournalEntry:
    """A payment held for review: payer → risk hold, the whole amount. The
    entry names the merchant it is meant for; release or return it later."""
    _positive(amount)
    wallet = ledger_account_for_payer(payer=payer, currency=amount.currency)
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


def _payment_code_spend_returning_payer(code_hash: str, now: datetime) -> Payer | None:
    from apps.accounts.models import PaymentPassword

    codes, payers = PaymentCode._meta.db_table, Payer._meta.db_table
    passwords = PaymentPassword._meta.db_table
    rows = list(
        Payer.objects.raw(
            f"UPDATE {codes} AS pc SET consumed_at = %s FROM {payers} AS p "  # noqa: S608 (table names from the models)
            "WHERE p.id = pc.payer_id AND pc.code_hash = %s AND pc.consumed_at IS NULL "
            "AND pc.expires_at > %s AND p.account_class <> %s RETURNING p.*, "
            f"(SELECT pw.locked_until FROM {passwords} AS pw WHERE pw.payer_id = p.id) "
            "AS payment_password_locked_until",
            [now, code_hash, now, Payer.AccountClass.UNVERIFIED],
        )
    )
    return rows[0] if rows else None


def payment_code_consume(*, code: str) -> Payer:
    """Spends a code: one conditional UPDATE, so of any number of terminals
    presenting the same code exactly one gets the payer. Raises
    PaymentCodeUnknown / PaymentCodeExpired / PaymentCodeUsed /
    PayerNotVerified. Runs in the caller's transaction when there is one
    (a payment that rolls back gives the code back). On PostgreSQL the payer
    comes with `payment_password_locked_until`, read by the same statement
    (the payment checks it next)."""
    code_hash = payment_code_hash(str(code).strip())
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One round trip on the way a payment normally goes: the same
        # conditional spend, joined to the payer and refusing an unverified
        # one in its WHERE (so a refused code is still never spent), and
        # returning the payer. Zero rows: the read below tells why.
        payer = _payment_code_spend_returning_payer(code_hash, now)
        if payer is not None:
            return payer
    # Read, check, then spend with one conditional UPDATE: of any number of
    # terminals presenting the code only one UPDATE matches the row. A
    # refused code is never spent, and no savepoint is needed (two round
    # trips fewer inside a payment).
    payment_code = PaymentCode.objects.select_related("payer").filter(code_hash=code_hash).first()
    if payment_code is None:
        raise PaymentCodeUnknown("no such payment code")
    if payment_code.consumed_at is not None:
        raise PaymentCodeUsed("this payment code was already used")
    if payment_code.expires_at <= now:
        raise PaymentCodeExpired("this payment code has expired")
    _payer_may_pay(payment_code.payer)
    spent = PaymentCode.objects.filter(
        pk=payment_code.pk, consumed_at__isnull=True, expires_at__gt=now
    ).update(consumed_at=now)
    if not spent:
        raise PaymentCodeUsed("this payment code was already used")
    return payment_code.payer


def payment_code_purge_expired(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Deletes codes expired for a while (they only ever fail to consume).
    Keeps the hash index small and collisions of new codes impossible."""
    with transaction.atomic(durable=True):
        deleted, _ = PaymentCode.objects.filter(expires_at__lt=timezone.now() - older_than).delete()
    return deleted

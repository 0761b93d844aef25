"""The double-entry ledger and payment codes.

Money lives in `LedgerAccount`s. It moves only by a `JournalEntry` whose
`Posting`s sum to zero, written in one database transaction together with
the change of each account's cached `balance`. Entries and postings are
never updated or deleted: a mistake is corrected by a new entry.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Merchant, Payer
from apps.accounts.tenancy import TenantOwnedModel
from apps.core.money import Money


class AccountKind(models.TextChoices):
    PAYER_WALLET = "payer_wallet", _("payer wallet")
    MERCHANT_SETTLEMENT = "merchant_settlement", _("merchant settlement")
    FEE_REVENUE = "fee_revenue", _("platform fee revenue")
    RISK_HOLD = "risk_hold", _("risk hold")
    EXTERNAL_CLEARING = "external_clearing", _("external clearing")


# Customer money: these balances never go below zero (checked debits plus a
# database constraint). Platform accounts are one per currency and may be
# debited without a balance check; external clearing is negative by design
# (it mirrors the money that came in from banks).
CUSTOMER_KINDS = (AccountKind.PAYER_WALLET, AccountKind.MERCHANT_SETTLEMENT)
PLATFORM_KINDS = (AccountKind.FEE_REVENUE, AccountKind.RISK_HOLD, AccountKind.EXTERNAL_CLEARING)

# Every payment credits fee revenue. One row for it would make every payment
# on the platform queue for that row's lock (held from its UPDATE to COMMIT),
# and at a busy merchant it would be the second hot row each payment waits
# for while holding the first. So fee revenue is kept in this many slot rows
# per currency, each payment crediting a random one; the platform's fee
# revenue is their sum (selectors.ledger_platform_balance).
FEE_REVENUE_SLOTS = 16


class LedgerAccount(models.Model):
    """A balance in one currency: a payer's wallet, a merchant's settlement
    account, or one of the platform's accounts (one per kind and currency;
    fee revenue is split into FEE_REVENUE_SLOTS rows, see there).
    `balance` caches the sum of the account's postings, in minor units; it is
    changed only by apps.transactions.services.ledger_post. `frozen` (set by
    compliance or the risk monitor) refuses debits; credits still land."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=24, choices=AccountKind.choices)
    payer = models.ForeignKey(
        Payer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("payer"),
    )
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("merchant"),
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    balance = models.BigIntegerField(_("balance (minor units)"), default=0)
    slot = models.PositiveSmallIntegerField(
        _("slot"), default=0, help_text=_("fee revenue only: see FEE_REVENUE_SLOTS")
    )
    frozen = models.BooleanField(_("frozen"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=PLATFORM_KINDS) | Q(balance__gte=0),
                name="ledger_customer_balance_not_negative",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=AccountKind.PAYER_WALLET, payer__isnull=False, merchant__isnull=True)
                    | Q(
                        kind=AccountKind.MERCHANT_SETTLEMENT,
                        payer__isnull=True,
                        merchant__isnull=False,
                    )
                    | Q(kind__in=PLATFORM_KINDS, payer__isnull=True, merchant__isnull=True)
                ),
                name="ledger_account_owner_matches_kind",
            ),
            # One account per owner and currency: concurrent first payments
            # race on these constraints, and get_or_create resolves the race.
            models.UniqueConstraint(
                fields=["payer", "currency"],
                condition=Q(kind=AccountKind.PAYER_WALLET),
                name="ledger_one_wallet_per_payer_currency",
            ),
            models.UniqueConstraint(
                fields=["merchant", "currency"],
                condition=Q(kind=AccountKind.MERCHANT_SETTLEMENT),
                name="ledger_one_settlement_per_merchant_currency",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency", "slot"],
                condition=Q(kind__in=PLATFORM_KINDS),
                name="ledger_one_platform_account_per_currency",
            ),
            models.CheckConstraint(
                condition=Q(slot=0) | Q(kind=AccountKind.FEE_REVENUE, slot__lt=FEE_REVENUE_SLOTS),
                name="ledger_only_fee_revenue_has_slots",
            ),
        ]

    def __str__(self) -> str:
        if self.payer_id:
            return f"{self.get_kind_display()} {self.currency} (payer {self.payer_id})"
        if self.merchant_id:
            return f"{self.get_kind_display()} {self.currency} (merchant {self.merchant_id})"
        return f"{self.get_kind_display()} {self.currency}"

    @property
    def balance_money(self) -> Money:
        return Money(self.balance, self.currency)

    @property
    def is_customer_money(self) -> bool:
        return self.kind in CUSTOMER_KINDS


class ImmutableQuerySet(models.QuerySet):
    """Bulk update() and delete() are refused: ledger rows are append-only."""

    def update(self, **kwargs):
        raise RuntimeError(f"{self.model.__name__} rows are immutable")

    def delete(self):
        raise RuntimeError(f"{self.model.__name__} rows are immutable")


class ImmutableModel(models.Model):
    """Saved once, never changed or deleted. On PostgreSQL a trigger refuses
    UPDATE and DELETE too (migration 0002), against a stray raw query."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise RuntimeError(f"{type(self).__name__} rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} rows are immutable")


class EntryKind(models.TextChoices):
    TOP_UP = "top_up", _("wallet top-up")
    WITHDRAWAL = "withdrawal", _("merchant withdrawal")
    PAYMENT = "payment", _("payment")
    HOLD = "hold", _("payment held for review")
    HOLD_RELEASE = "hold_release", _("held payment released to merchant")
    HOLD_RETURN = "hold_return", _("held payment returned to payer")
    REFUND = "refund", _("refund")
    REVERSAL = "reversal", _("reversal")


# Kinds that settle or undo their `original` entry: each may happen to an
# entry at most once, and only one of them (a hold is released, returned or
# reversed, never two of these). The database enforces it.
CONCLUDING_KINDS = (EntryKind.HOLD_RELEASE, EntryKind.HOLD_RETURN, EntryKind.REVERSAL)


class JournalEntry(ImmutableModel):
    """One movement of money: its postings sum to zero. It names the business
    event that caused it (`event_type`, `event_id`: e.g. a payment's model
    label and public id) and, where the client sent one, its idempotency key.
    Refunds, hold decisions and reversals point at their `original` entry."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=16, choices=EntryKind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    # The merchant the money movement concerns (tenant attribution for
    # statements and history); empty for wallet top-ups.
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journal_entries",
        verbose_name=_("merchant"),
    )
    event_type = models.CharField(_("event type"), max_length=80, blank=True)
    event_id = models.CharField(_("event id"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    original = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("original entry"),
    )
    memo = models.CharField(_("memo"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        constraints = [
            # A business event moves money of one kind once: a retried
            # request or a double click can never post a second time.
            models.UniqueConstraint(
                fields=["kind", "event_type", "event_id"],
                condition=~Q(event_id=""),
                name="ledger_entry_once_per_event",
            ),
            models.UniqueConstraint(
                fields=["kind", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="ledger_entry_once_per_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["original"],
                condition=Q(kind__in=CONCLUDING_KINDS),
                name="ledger_entry_concluded_once",
            ),
        ]
        indexes = [
            models.Index(fields=["event_type", "event_id"], name="ledger_entry_event"),
            models.Index(fields=["merchant", "created_at"], name="ledger_entry_merchant_day"),
            # JournalEntryAdmin's kind filter, newest (highest id) first.
            models.Index(fields=["kind", "-id"], name="ledger_entry_kind_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.public_id}"


class Posting(ImmutableModel):
    """One line of a journal entry: a signed amount (minor units) on one
    account. Positive credits the account's balance, negative debits it."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField(_("amount (minor units)"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_not_zero")
        ]
        # History pages walk one account's postings newest first (keyset on id).
        indexes = [models.Index(fields=["account", "-id"], name="ledger_posting_account_recent")]

    def __str__(self) -> str:
        return f"{self.amount:+d} on account {self.account_id}"


class PaymentCode(models.Model):
    """A single-use payment code shown by the payer's wallet, valid for 60 s.
    Only a keyed hash (HMAC with BLIND_INDEX_KEY) is stored: a database
    reader cannot spend a live code. The clear code exists once, on the
    instance payment_code_issue returns (`.code`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="payment_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    code: str = ""  # the clear code, set only on a freshly issued instance

    class Meta:
        verbose_name = _("payment code")
        verbose_name_plural = _("payment codes")

    def __str__(self) -> str:
        return f"payment code {self.public_id}"


# --- payments (the business events that move money) ---------------------------


class PaymentStatus(models.TextChoices):
    AWAITING_PASSWORD = "awaiting_password", _("awaiting payment password")
    COMPLETED = "completed", _("completed")
    HELD = "held", _("held for review")
    DECLINED = "declined", _("declined")
    PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")
    REFUNDED = "refunded", _("refunded")
    REVERSED = "reversed", _("reversed")
    RETURNED = "returned", _("returned to payer")


# The state machine: every status a payment may move to from each status.
# services._payment_transition refuses anything else.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "": frozenset(
        {
            PaymentStatus.AWAITING_PASSWORD,
            PaymentStatus.COMPLETED,
            PaymentStatus.HELD,
            PaymentStatus.DECLINED,
        }
    ),
    PaymentStatus.AWAITING_PASSWORD: frozenset(
        {
            PaymentStatus.COMPLETED,
            PaymentStatus.HELD,
            PaymentStatus.DECLINED,
            PaymentStatus.REVERSED,
        }
    ),
    PaymentStatus.HELD: frozenset({PaymentStatus.COMPLETED, PaymentStatus.RETURNED}),
    PaymentStatus.COMPLETED: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.REVERSED}
    ),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
    ),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
    PaymentStatus.REVERSED: frozenset(),
    PaymentStatus.RETURNED: frozenset(),
}
# Statuses in which the merchant got the money (and may refund some of it).
PAID_STATUSES = (
    PaymentStatus.COMPLETED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
)


class Payment(TenantOwnedModel):
    """A payment at a POS terminal: who paid whom, how much, where, what risk
    decided and where it stands (`status`, changed only through the state
    machine in services, each change a PaymentTransition plus an audit
    record). Its money moved in journal entries whose event is this payment
    (event_type "transactions.payment", event_id = public_id)."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    terminal = models.ForeignKey(
        "terminals.Terminal",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("terminal"),
    )
    shop = models.ForeignKey(
        "accounts.Shop", on_delete=models.PROTECT, related_name="payments", verbose_name=_("shop")
    )
    operator = models.ForeignKey(
        "accounts.Membership",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments_taken",
        verbose_name=_("operator"),
    )
    payer = models.ForeignKey(
        Payer, on_delete=models.PROTECT, related_name="payments", verbose_name=_("payer")
    )
    amount = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=PaymentStatus.choices)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    refunded_amount = models.BigIntegerField(_("refunded (minor units)"), default=0)
    password_failures = models.PositiveSmallIntegerField(_("wrong payment passwords"), default=0)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    # apps.risk's RiskDecisionRecord.public_id of the latest decision (the
    # step-up retry decides again); a UUID, not a foreign key, so the two
    # apps' migrations stay independent.
    risk_decision_public_id = models.UUIDField(_("risk decision ID"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=models.F("amount")),
                name="payment_refunded_within_amount",
            ),
            models.UniqueConstraint(
                fields=["terminal", "idempotency_key"], name="payment_once_per_terminal_key"
            ),
        ]
        # The portal's list walks (created_at, id) downwards (keyset), per
        # merchant and optionally per terminal or status: each filter has an
        # index whose order is the page order, so a page is an index range
        # scan however many millions of rows the merchant has.
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="payment_merchant_recent"),
            models.Index(
                fields=["merchant", "terminal", "-created_at", "-id"],
                name="payment_terminal_recent",
            ),
            models.Index(
                fields=["merchant", "status", "-created_at", "-id"], name="payment_status_recent"
            ),
            models.Index(fields=["payer", "-created_at"], name="payment_payer_recent"),
            # Compliance's list across all merchants (PaymentAdmin: newest
            # first, filtered by status): a page is an index range, not a
            # sort of every payment.
            models.Index(fields=["-created_at", "-id"], name="payment_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="payment_status_all_recent"),
        ]

    def __str__(self) -> str:
        return f"payment {self.public_id} ({self.status})"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable(self) -> int:
        if self.status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
            return 0
        return self.amount - self.refunded_amount


class PaymentTransition(models.Model):
    """One change of a payment's status (append-only history; each also has
    an audit record)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("payment transition")
        verbose_name_plural = _("payment transitions")

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class Refund(TenantOwnedModel):
    """All or part of a paid payment given back to the payer, approved by a
    supervisor's PIN (terminal) or an owner/manager with OTP (portal)."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    terminal = models.ForeignKey(
        "terminals.Terminal",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("terminal"),
    )
    amount = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    approved_by = models.ForeignKey(
        "accounts.Membership",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")
        ]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="refund_merchant_recent")]

    def __str__(self) -> str:
        return f"refund {self.public_id}"


class Reversal(TenantOwnedModel):
    """A terminal's void of the payment it sent with `original_key` (usually
    one whose answer it never got). `outcome` says what it did: reversed a
    paid payment, voided one that awaited a password, or, when no payment
    with that key had arrived, blocked the key so the late original is
    refused. Once per terminal and key."""

    class Outcome(models.TextChoices):
        REVERSED = "reversed", _("payment reversed")
        VOIDED = "voided", _("unfinished payment voided")
        KEY_BLOCKED = "key_blocked", _("key blocked (no payment yet)")
        NOTHING = "nothing", _("payment was declined: nothing to undo")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    terminal = models.ForeignKey(
        "terminals.Terminal",
        on_delete=models.PROTECT,
        related_name="reversals",
        verbose_name=_("terminal"),
    )
    original_key = models.CharField(_("original idempotency key"), max_length=255)
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("payment"),
    )
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("reversal")
        verbose_name_plural = _("reversals")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal", "original_key"], name="reversal_once_per_terminal_key"
            )
        ]

    def __str__(self) -> str:
        return f"reversal of {self.original_key} ({self.outcome})"


class BatchClose(TenantOwnedModel):
    """A terminal's end-of-day close: its own counts and totals next to the
    server's for the same period (since its previous close). Mismatches are
    kept (`matched` false, `differences`) for the merchant and compliance."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    terminal = models.ForeignKey(
        "terminals.Terminal",
        on_delete=models.PROTECT,
        related_name="batch_closes",
        verbose_name=_("terminal"),
    )
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"))
    terminal_counts = models.JSONField(_("terminal's totals"), default=dict)
    server_counts = models.JSONField(_("server's totals"), default=dict)
    differences = models.JSONField(_("differences"), default=dict, blank=True)
    matched = models.BooleanField(_("matched"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("batch close")
        verbose_name_plural = _("batch closes")
        indexes = [
            models.Index(fields=["terminal", "-period_end"], name="batchclose_terminal_recent")
        ]

    def __str__(self) -> str:
        return f"batch close {self.public_id} ({'matched' if self.matched else 'MISMATCH'})"


class IdempotencyRecord(models.Model):
    """The answer to a terminal's request with an Idempotency-Key, stored in
    the same transaction as what the request changed (IETF draft
    httpapi-idempotency-key-header): the same key and request get this
    answer again, a different request with the key is refused. Kept for
    settings.IDEMPOTENCY_KEEP_DAYS (terminals can be offline for days)."""

    terminal = models.ForeignKey(
        "terminals.Terminal", on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=40)
    request_hash = models.CharField(max_length=64)
    # The signed request's nonce: its durable record (apps/terminals/replay.py).
    request_nonce = models.CharField(max_length=128, blank=True, default="")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    payment = models.ForeignKey(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["terminal", "key"], name="idempotency_once_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"

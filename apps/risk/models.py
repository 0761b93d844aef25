"""Risk: rule configuration, lists, decisions, per-payer state, holds and
cases, alerts and the balance monitor's memory.

Payments, terminals and ledger accounts are referenced by plain integer ids
(or public ids), not foreign keys: risk must be able to explain a past
decision even after the objects it looked at changed, and the engine must not
join across apps on the payment's hot path.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import TenantOwnedModel


class Outcome(models.TextChoices):
    """A real-time decision, from mildest to most severe."""

    APPROVE = "approve", _("approve")
    STEP_UP = "step_up", _("require payment password")
    HOLD = "hold", _("hold for review")
    DECLINE = "decline", _("decline")


OUTCOME_SEVERITY = {Outcome.APPROVE: 0, Outcome.STEP_UP: 1, Outcome.HOLD: 2, Outcome.DECLINE: 3}


class PaymentOutcome(models.TextChoices):
    """What finally happened to a payment (told to risk by the payment service)."""

    APPROVED = "approved", _("approved")
    HELD = "held", _("held")
    DECLINED = "declined", _("declined")


class RuleMode(models.TextChoices):
    ENABLED = "enabled", _("enabled")
    SHADOW = "shadow", _("shadow (recorded, no effect)")
    DISABLED = "disabled", _("disabled")


class RuleConfig(models.Model):
    """One layer of a rule's configuration. The effective configuration of a
    rule for a payment is the code's defaults, overlaid by the `default` row,
    then the row for the merchant's category (MCC), then the merchant's own
    row. Each save bumps `version`; every version is kept (RuleConfigVersion)
    so past decisions can be replayed with the parameters they used."""

    class Scope(models.TextChoices):
        DEFAULT = "default", _("all merchants")
        MCC = "mcc", _("merchant category")
        MERCHANT = "merchant", _("one merchant")

    rule_code = models.CharField(_("rule"), max_length=60)
    scope = models.CharField(
        _("scope"), max_length=10, choices=Scope.choices, default=Scope.DEFAULT
    )
    mcc = models.CharField(_("merchant category code"), max_length=4, blank=True)
    merchant = models.ForeignKey(
        "accounts.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
    )
    # Empty mode means "inherit from the wider layer".
    mode = models.CharField(_("mode"), max_length=10, choices=RuleMode.choices, blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    updated_by = models.CharField(_("updated by"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("rule configuration")
        verbose_name_plural = _("rule configurations")
        constraints = [
            models.UniqueConstraint(
                fields=["rule_code"], condition=Q(scope="default"), name="ruleconfig_one_default"
            ),
            models.UniqueConstraint(
                fields=["rule_code", "mcc"], condition=Q(scope="mcc"), name="ruleconfig_one_per_mcc"
            ),
            models.UniqueConstraint(
                fields=["rule_code", "merchant"],
                condition=Q(scope="merchant"),
                name="ruleconfig_one_per_merchant",
            ),
            models.CheckConstraint(
                condition=(Q(scope="default", mcc="", merchant__isnull=True))
                | (Q(scope="mcc", merchant__isnull=True) & ~Q(mcc=""))
                | Q(scope="merchant", mcc="", merchant__isnull=False),
                name="ruleconfig_scope_consistent",
            ),
        ]

    def __str__(self) -> str:
        where = {
            "default": "default",
            "mcc": f"MCC {self.mcc}",
            "merchant": f"merchant {self.merchant_id}",
        }
        return f"{self.rule_code} · {where[self.scope]} · v{self.version}"

    @property
    def layer_label(self) -> str:
        if self.scope == self.Scope.MCC:
            return f"mcc:{self.mcc}"
        if self.scope == self.Scope.MERCHANT:
            return f"merchant:{self.merchant_id}"
        return "default"


class RuleConfigVersion(models.Model):
    """Every version a rule configuration layer ever had (append-only)."""

    config = models.ForeignKey(RuleConfig, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    mode = models.CharField(max_length=10, blank=True)
    params = models.JSONField(default=dict)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("rule configuration version")
        verbose_name_plural = _("rule configuration versions")
        constraints = [
            models.UniqueConstraint(fields=["config", "version"], name="ruleconfigversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.config_id} v{self.version}"


class ListEntry(models.Model):
    """A block or allow list entry for a payer, terminal or merchant. Block
    entries decline; allow entries skip the rules they name. Entries expire,
    and remember the case that added them."""

    class Kind(models.TextChoices):
        BLOCK = "block", _("block")
        ALLOW = "allow", _("allow")

    class Subject(models.TextChoices):
        PAYER = "payer", _("payer")
        TERMINAL = "terminal", _("terminal")
        MERCHANT = "merchant", _("merchant")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    subject_type = models.CharField(_("subject type"), max_length=10, choices=Subject.choices)
    subject_id = models.BigIntegerField(_("subject id"))
    # Allow entries: the rule codes to skip ("*" skips all but the block lists).
    skip_rules = models.JSONField(_("rules skipped"), default=list, blank=True)
    reason = models.CharField(_("reason"), max_length=500)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    source_case = models.ForeignKey(
        "risk.RiskCase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="list_entries",
        verbose_name=_("source case"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=200, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("list entry")
        verbose_name_plural = _("list entries")
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="risklist_subject")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_type} {self.subject_id}"

    def active_at(self, when) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > when)


class RiskDecisionRecord(TenantOwnedModel):
    """One real-time decision: the context it saw, the inputs it read (state
    and counters), every rule hit with its values, the rule versions used, the
    outcome and score. Enough to explain the decision and to replay it. The
    payment points to it by `public_id`; once the payment's result is known,
    `payment_outcome` is filled in (risk_record_payment). The async detectors
    and the backtest read these rows, not the payments table."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    occurred_at = models.DateTimeField(_("occurred at"))
    payer_id = models.BigIntegerField(_("payer ID"))
    terminal_id = models.BigIntegerField(_("terminal ID"), null=True, blank=True)
    amount = models.BigIntegerField(_("amount (minor units)"), help_text=_("minor units (fen)"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    score = models.IntegerField(_("score"), default=0)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    hits = models.JSONField(_("rule hits"), default=list, blank=True)
    rule_versions = models.JSONField(_("rule versions"), default=dict, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    inputs = models.JSONField(_("inputs"), default=dict, blank=True)
    elapsed_ms = models.FloatField(_("elapsed (ms)"), default=0)
    payment_public_id = models.UUIDField(_("payment ID"), null=True, blank=True)
    payment_outcome = models.CharField(
        _("payment outcome"), max_length=10, choices=PaymentOutcome.choices, blank=True
    )
    # Set with the payment's outcome; the detectors' sweep clears it.
    detectors_pending = models.BooleanField(_("detectors pending"), default=False)

    class Meta:
        verbose_name = _("risk decision")
        verbose_name_plural = _("risk decisions")
        indexes = [
            models.Index(fields=["payer_id", "occurred_at"], name="riskdec_payer_time"),
            models.Index(fields=["terminal_id", "occurred_at"], name="riskdec_terminal_time"),
            models.Index(fields=["merchant", "occurred_at"], name="riskdec_merchant_time"),
            models.Index(fields=["occurred_at"], name="riskdec_time"),
            # RiskDecisionRecordAdmin's outcome filter, newest (highest id)
            # first: holds and declines are a small share of all decisions.
            models.Index(fields=["outcome", "-id"], name="riskdec_outcome_recent"),
            # Only the few records the detectors have yet to see.
            models.Index(
                fields=["id"],
                condition=models.Q(detectors_pending=True),
                name="riskdec_detectors_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.amount} ({self.public_id})"


class PayerRiskState(models.Model):
    """Running totals of one payer, kept by risk_record_payment, so a decision
    reads one row instead of summing payment history. Days and years are
    Asia/Shanghai calendar days and years."""

    payer_id = models.BigIntegerField(unique=True)
    day = models.DateField(null=True, blank=True)
    day_total = models.BigIntegerField(default=0)
    day_password_free_total = models.BigIntegerField(default=0)
    year = models.PositiveIntegerField(null=True, blank=True)
    year_total = models.BigIntegerField(default=0)
    lifetime_total = models.BigIntegerField(default=0)
    # Usual amounts: count and sum of approved payments (integers, no floats).
    payments_count = models.BigIntegerField(default=0)
    payments_sum = models.BigIntegerField(default=0)
    last_latitude = models.FloatField(null=True, blank=True)
    last_longitude = models.FloatField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    # The payer's own, lower, password-free daily limit (fen); null = policy.
    password_free_daily_limit = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("payer risk state")
        verbose_name_plural = _("payer risk states")

    def __str__(self) -> str:
        return f"risk state of payer {self.payer_id}"


# A busy merchant's approved payments each add to its usual amounts inside
# their transactions; spread over slot rows (summed when read), they do not
# queue behind one row lock as they would on a single row.
MERCHANT_STATE_SLOTS = 16


class MerchantRiskState(models.Model):
    """One slot of a merchant's usual payment amounts (count and sum of
    approved payments); the merchant's figures are the sums over its slots."""

    merchant_id = models.BigIntegerField()
    slot = models.PositiveSmallIntegerField(default=0)
    payments_count = models.BigIntegerField(default=0)
    payments_sum = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("merchant risk state")
        verbose_name_plural = _("merchant risk states")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant_id", "slot"], name="risk_merchant_state_slot_unique"
            )
        ]

    def __str__(self) -> str:
        return f"risk state of merchant {self.merchant_id} (slot {self.slot})"


class RiskCounterBucket(models.Model):
    """Velocity counters when no Redis is configured: a count per key per
    time bucket. A window's count is one indexed range read over at most a
    few dozen buckets."""

    key = models.CharField(max_length=120)
    bucket = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("velocity counter")
        verbose_name_plural = _("velocity counters")
        constraints = [
            models.UniqueConstraint(fields=["key", "bucket"], name="riskcounter_key_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.bucket}={self.count}"


class RiskCase(models.Model):
    """A matter for compliance: a held payment, a balance drift, a detector's
    finding. Reviewed in the admin (assignment, lock while reviewing, decision
    with a mandatory reason, a second approver above a configured amount)."""

    class Kind(models.TextChoices):
        PAYMENT_HOLD = "payment_hold", _("held payment")
        BALANCE_DRIFT = "balance_drift", _("balance drift")
        DETECTOR = "detector", _("detector finding")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        AWAITING_SECOND = "awaiting_second", _("awaiting second approver")
        APPROVED = "approved", _("approved")
        DECLINED = "declined", _("declined")
        EXPIRED = "expired", _("expired")
        CLOSED = "closed", _("closed")

    OPEN_STATUSES = (Status.OPEN, Status.AWAITING_SECOND)

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    merchant = models.ForeignKey(
        "accounts.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
    )
    title = models.CharField(_("title"), max_length=200)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    decision = models.ForeignKey(
        RiskDecisionRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("risk decision"),
    )
    payment_public_id = models.UUIDField(_("payment ID"), null=True, blank=True)
    # The ledger's HOLD journal entry (apps.transactions) this case decides.
    hold_entry_public_id = models.UUIDField(_("hold entry ID"), null=True, blank=True)
    payer_id = models.BigIntegerField(_("payer ID"), null=True, blank=True)
    ledger_account_id = models.BigIntegerField(_("ledger account ID"), null=True, blank=True)
    amount = models.BigIntegerField(_("amount (minor units)"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("assigned to"),
    )
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("locked by"),
    )
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    first_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("first approved by"),
    )
    first_approved_at = models.DateTimeField(_("first approved at"), null=True, blank=True)
    first_approval_reason = models.CharField(
        _("first approval reason"), max_length=1000, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=1000, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("risk case")
        verbose_name_plural = _("risk cases")
        indexes = [
            models.Index(fields=["status", "created_at"], name="riskcase_queue"),
            models.Index(fields=["status", "expires_at"], name="riskcase_expiry"),
        ]
        constraints = [
            # One open hold case per payment: a retried callback cannot open two.
            models.UniqueConstraint(
                fields=["payment_public_id"],
                condition=Q(kind="payment_hold"),
                name="riskcase_one_hold_per_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class RiskHold(TenantOwnedModel):
    """What the merchant sees of a held payment: the amount and its status,
    never the rules that caught it."""

    class Status(models.TextChoices):
        HELD = "held", _("held for review")
        RELEASED = "released", _("released to merchant")
        RETURNED = "returned", _("returned to payer")
        EXPIRED = "expired", _("expired, returned to payer")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.OneToOneField(RiskCase, on_delete=models.PROTECT, related_name="hold")
    payment_public_id = models.UUIDField(unique=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("risk hold")
        verbose_name_plural = _("risk holds")

    def __str__(self) -> str:
        return f"hold {self.payment_public_id} ({self.status})"


class Alert(models.Model):
    """A finding for compliance: stored, deduplicated by `dedup_key` while
    open (a repeat bumps `occurrences` and `last_seen_at`, and sends no new
    email), shown in the admin and emailed to settings.COMPLIANCE_EMAILS."""

    class Severity(models.TextChoices):
        INFO = "info", _("info")
        WARNING = "warning", _("warning")
        CRITICAL = "critical", _("critical")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        RESOLVED = "resolved", _("resolved")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=60, db_index=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(
        _("status"), max_length=15, choices=Status.choices, default=Status.OPEN
    )
    title = models.CharField(_("title"), max_length=200)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    dedup_key = models.CharField(_("deduplication key"), max_length=200)
    merchant = models.ForeignKey(
        "accounts.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
    )
    first_seen_at = models.DateTimeField(_("first seen at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # At most one unresolved alert per dedup key; the database enforces it.
            models.UniqueConstraint(
                fields=["dedup_key"], condition=~Q(status="resolved"), name="alert_one_open_per_key"
            ),
        ]
        indexes = [models.Index(fields=["status", "-last_seen_at"], name="alert_queue")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"


class BalanceWatch(models.Model):
    """The balance monitor's memory of one ledger account: its balance at the
    last run and the typical size of a change between runs, for the sudden
    swing check. Never used to correct anything."""

    ledger_account_id = models.BigIntegerField(unique=True)
    last_balance = models.BigIntegerField()
    typical_change = models.BigIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("balance watch")
        verbose_name_plural = _("balance watches")

    def __str__(self) -> str:
        return f"watch of account {self.ledger_account_id}"


class MonitorRun(models.Model):
    """One run of a monitor (balance check, detectors sweep): when, how long,
    what it found. The dashboard shows the latest of each."""

    name = models.CharField(_("name"), max_length=60, db_index=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    ok = models.BooleanField(_("OK"), default=True)
    findings = models.JSONField(_("findings"), default=list, blank=True)
    stats = models.JSONField(_("statistics"), default=dict, blank=True)

    class Meta:
        verbose_name = _("monitor run")
        verbose_name_plural = _("monitor runs")
        indexes = [models.Index(fields=["name", "-started_at"], name="monitorrun_latest")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.started_at:%Y-%m-%d %H:%M}"


class MonitoredJob(models.Model):
    """When the monitor of the monitors first expected a scheduled job: a
    job that never ran is late only once its window has passed since then
    (a fresh deployment is not an alarm)."""

    name = models.CharField(max_length=100, unique=True)
    first_expected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("monitored job")
        verbose_name_plural = _("monitored jobs")

    def __str__(self) -> str:
        return self.name


class RefundSignal(TenantOwnedModel):
    """A refund, as told to risk by the refund service (risk_record_refund),
    for the refund-ratio detector; risk does not read the refunds table."""

    amount = models.BigIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("refund signal")
        verbose_name_plural = _("refund signals")
        indexes = [
            models.Index(fields=["merchant", "occurred_at"], name="riskrefund_merchant_time")
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} at merchant {self.merchant_id}"

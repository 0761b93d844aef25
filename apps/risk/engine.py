"""The real-time risk engine: the interface the payment service calls.

    ctx = payment_context_build(payer=payer, merchant=merchant, terminal=terminal,
                                amount=fen, latitude=..., longitude=...,
                                password_verified=<True on the step-up retry>)
    decision = risk_decide(ctx=ctx, save=False)   # keep decision.public_id on the Payment
    # decision.outcome: "approve" | "step_up" | "hold" | "decline"; decision.reasons: codes

    in the payment's own transaction (apps/transactions/services/payments.py),
    with its writes in one WriteBatch:
        approve / hold / decline ->
                   risk_record_payment(ctx=ctx, decision=decision, outcome="approved"
                                       | "held" | "declined", payment_public_id=...,
                                       batch=batch)
        hold    -> also risk_case_open(kind="payment_hold", ..., batch=batch)
        step_up -> batch.insert(decision.record); the retry with the password
                   is a new decision.
    wrong payment password -> risk_password_failure_record(payer_id=payer.pk)

When compliance approves or declines a hold (or it expires), apps.risk
records the decision and has the ledger move the money and settle the
payment in the same transaction (apps/risk/holds.py).

A decision reads: the configuration (process memory), the payer's and the
merchant's running totals (one query over two unique-index lookups) and the
velocity counters (one pipelined Redis round trip, or one indexed query
without Redis), then writes one RiskDecisionRecord. It never scans payment
history.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dt_time
from typing import Any

from django.db import connection, transaction

from apps.accounts.models import Merchant
from apps.audit.services import audit_record, security_event_record
from apps.core.db import WriteBatch
from apps.risk import clock
from apps.risk.config import config_snapshot
from apps.risk.context import DecisionInputs, EffectiveRule, PaymentContext, RuleHit
from apps.risk.counters import CounterQuery, CounterUnavailable, counter_store
from apps.risk.decision import Evaluation, evaluate
from apps.risk.models import (
    MERCHANT_STATE_SLOTS,
    MerchantRiskState,
    Outcome,
    PayerRiskState,
    PaymentOutcome,
    RiskDecisionRecord,
    RuleMode,
)
from apps.risk.rules import LOCAL_TZ, RULES
from apps.risk.services import alert_raise

logger = logging.getLogger(__name__)

__all__ = [
    "Outcome",
    "PaymentContext",
    "PaymentOutcome",
    "RiskDecision",
    "payment_context_build",
    "risk_decide",
    "risk_password_failure_record",
    "risk_record_payment",
]


@dataclass(frozen=True)
class RiskDecision:
    """The engine's answer. `public_id` is the stored RiskDecisionRecord's;
    the payment keeps it. `reasons` are stable codes (docs/api-errors.md)."""

    public_id: str
    outcome: str
    score: int
    reasons: list[str]
    hits: list[RuleHit]
    shadow_hits: list[RuleHit]
    rule_versions: dict[str, str]
    # The decision's stored record: unsaved (pk None) until written when
    # risk_decide was told not to save it (see risk_record_payment).
    record: RiskDecisionRecord = field(repr=False)
    elapsed_ms: float
    inputs: DecisionInputs = field(repr=False)
    skipped: list[str] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return self.outcome == Outcome.APPROVE

    @property
    def record_id(self) -> int | None:
        return self.record.pk


def payment_context_build(
    *,
    payer: Any,
    merchant: Any,
    terminal: Any,
    amount: int,
    currency: str = "CNY",
    latitude: Any = None,
    longitude: Any = None,
    occurred_at: datetime | None = None,
    password_verified: bool = False,
    payment_public_id: Any = None,
) -> PaymentContext:
    """A PaymentContext from the payment service's objects: an
    accounts.Payer, accounts.Merchant and terminals.Terminal (bound to an
    accounts.Shop with `bind_radius_m`); the terminal's reported location."""
    shop = getattr(terminal, "shop", None)

    def _f(value: Any) -> float | None:
        return float(value) if value is not None else None

    def _t(value: Any) -> dt_time | None:
        return dt_time.fromisoformat(value) if isinstance(value, str) else value

    return PaymentContext(
        payer_id=payer.pk,
        payer_account_class=str(payer.account_class),
        merchant_id=merchant.pk,
        merchant_mcc=merchant.mcc or "",
        terminal_id=terminal.pk if terminal is not None else None,
        shop_latitude=_f(getattr(shop, "latitude", None)),
        shop_longitude=_f(getattr(shop, "longitude", None)),
        shop_radius_m=getattr(terminal, "bind_radius_m", None),
        shop_opens_at=_t(getattr(shop, "opens_at", None)),
        shop_closes_at=_t(getattr(shop, "closes_at", None)),
        amount=amount,
        currency=currency,
        latitude=_f(latitude),
        longitude=_f(longitude),
        occurred_at=occurred_at or clock.risk_now(),
        password_verified=password_verified,
        payment_public_id=str(payment_public_id) if payment_public_id else None,
    )


def _counter_keys(ctx: PaymentContext) -> dict[str, str | None]:
    return {
        "payer": f"p:{ctx.payer_id}",
        "terminal": f"t:{ctx.terminal_id}" if ctx.terminal_id is not None else None,
        "merchant": f"m:{ctx.merchant_id}",
        "declines": f"d:{ctx.payer_id}",
        "wrong_passwords": f"w:{ctx.payer_id}",
        "merchant_all": f"ma:{ctx.merchant_id}",
        "merchant_negative": f"mn:{ctx.merchant_id}",
    }


def _local_day_year(at: datetime) -> tuple[date, int]:
    local = at.astimezone(LOCAL_TZ)
    return local.date(), local.year


_STATE_SQL = None


def _state_sql() -> str:
    global _STATE_SQL
    if _STATE_SQL is None:
        payer, merchant = PayerRiskState._meta.db_table, MerchantRiskState._meta.db_table
        # One round trip for both rows (unique index lookups); the LEFT JOINs
        # from a one-row dummy return a row even when neither exists yet.
        _STATE_SQL = (
            "SELECT p.day, p.day_total, p.day_password_free_total, p.year, p.year_total, p.lifetime_total, "  # noqa: S608
            "p.payments_count, p.payments_sum, p.password_free_daily_limit, p.last_latitude, p.last_longitude, "
            "p.last_at, m.payments_count, m.payments_sum "
            f"FROM (SELECT 1 AS one) AS x LEFT JOIN {payer} p ON p.payer_id = %s "
            "LEFT JOIN (SELECT sum(payments_count) AS payments_count, "
            f"sum(payments_sum) AS payments_sum FROM {merchant} WHERE merchant_id = %s) m ON true"
        )
    return _STATE_SQL


def _read_state(ctx: PaymentContext, inputs: DecisionInputs) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_state_sql(), [ctx.payer_id, ctx.merchant_id])
        row = cursor.fetchone()
    (
        day,
        day_total,
        free_total,
        year,
        year_total,
        lifetime,
        count,
        total,
        free_limit,
        lat,
        lon,
        last_at,
        m_count,
        m_total,
    ) = row
    if m_count is not None:
        inputs.merchant_payments_count, inputs.merchant_payments_sum = int(m_count), int(m_total)
    if lifetime is None:
        return  # no payer state yet
    today, this_year = _local_day_year(ctx.occurred_at)
    if isinstance(day, str):  # SQLite returns dates as text through a raw cursor
        day = date.fromisoformat(day)
    if isinstance(last_at, str):
        last_at = datetime.fromisoformat(last_at)
    if last_at is not None and last_at.tzinfo is None:
        last_at = last_at.replace(tzinfo=UTC)
    if day == today:
        inputs.payer_day_total = int(day_total)
        inputs.payer_day_password_free_total = int(free_total)
    if year == this_year:
        inputs.payer_year_total = int(year_total)
    inputs.payer_lifetime_total = int(lifetime)
    inputs.payer_payments_count = int(count)
    inputs.payer_payments_sum = int(total)
    inputs.payer_password_free_limit = int(free_limit) if free_limit is not None else None
    inputs.payer_last_latitude = lat
    inputs.payer_last_longitude = lon
    inputs.payer_last_at = last_at.isoformat() if last_at else None


def _read_velocity(
    ctx: PaymentContext, rules: dict[str, EffectiveRule], inputs: DecisionInputs
) -> None:
    keys = _counter_keys(ctx)
    queries = []
    for spec in RULES.values():
        rule = rules.get(spec.code)
        if spec.counter is None or spec.code.startswith("breaker.") or rule is None:
            continue
        if rule.mode == RuleMode.DISABLED or keys.get(spec.counter) is None:
            continue
        queries.append(CounterQuery(spec.counter, keys[spec.counter], int(rule.params["window_s"])))
    try:
        inputs.velocity = counter_store().counts(queries, now=ctx.occurred_at.timestamp())
    except CounterUnavailable as exc:
        inputs.velocity_available = False
        _counters_down(ctx, where="decide", error=str(exc))


_last_down_report = 0.0


def _counters_down(ctx: PaymentContext | None, *, where: str, error: str) -> None:
    """Redis is configured but down: a security event (at most one a minute
    per process, so an outage does not flood the trail) and a critical alert."""
    global _last_down_report
    logger.error("risk counters unavailable", extra={"where": where, "error": error[:200]})
    now = time.monotonic()
    if now - _last_down_report < 60 and _last_down_report:
        return
    _last_down_report = now
    data = {"where": where, "error": error[:200]}
    security_event_record(kind="risk_counters_unavailable", severity="critical", data=data)
    alert_raise(
        kind="risk_counters_unavailable",
        severity="critical",
        title="Risk velocity counters unavailable: velocity rules are failing closed (holding payments)",
        detail=data,
        dedup_key="risk_counters_unavailable",
    )


def risk_decide(*, ctx: PaymentContext, save: bool = True) -> RiskDecision:
    """Decides one payment and stores the decision (one INSERT). Call it
    inside the payment's transaction, so the decision commits with the
    payment at no extra commit; and commit a declined payment rather than
    raising out of that transaction, or its decision record rolls back too.

    save=False leaves the record unsaved, for a caller that writes it with
    its other writes (risk_record_payment, or `batch.insert(decision.record)`
    when the payment waits for a password): that caller must write it in
    the same transaction, or the decision is lost."""
    started = time.perf_counter()
    snapshot = config_snapshot()
    rules = snapshot.effective(ctx.merchant_mcc, ctx.merchant_id)
    inputs = DecisionInputs()
    inputs.blocked_by, inputs.allow_skips = snapshot.list_matches(
        [("payer", ctx.payer_id), ("terminal", ctx.terminal_id), ("merchant", ctx.merchant_id)],
        ctx.occurred_at,
    )
    _read_state(ctx, inputs)
    _read_velocity(ctx, rules, inputs)
    result: Evaluation = evaluate(ctx=ctx, inputs=inputs, rules=rules)
    elapsed_ms = (time.perf_counter() - started) * 1000
    record = RiskDecisionRecord(
        merchant_id=ctx.merchant_id,
        occurred_at=ctx.occurred_at,
        payer_id=ctx.payer_id,
        terminal_id=ctx.terminal_id,
        amount=ctx.amount,
        currency=ctx.currency,
        latitude=ctx.latitude,
        longitude=ctx.longitude,
        outcome=result.outcome,
        score=result.score,
        reasons=result.reasons,
        hits=[h.as_json() for h in result.hits] + [h.as_json() for h in result.shadow_hits],
        rule_versions=result.rule_versions,
        context=ctx.as_json(),
        inputs={**inputs.as_json(), "skipped": result.skipped},
        elapsed_ms=round(elapsed_ms, 3),
    )
    if save:
        # One INSERT, atomic by itself: no savepoint round trips when nested.
        record.save(force_insert=True)
    return RiskDecision(
        public_id=str(record.public_id),
        outcome=result.outcome,
        score=result.score,
        reasons=result.reasons,
        hits=result.hits,
        shadow_hits=result.shadow_hits,
        rule_versions=result.rule_versions,
        record=record,
        elapsed_ms=elapsed_ms,
        inputs=inputs,
        skipped=result.skipped,
    )


def _state_update(
    batch: WriteBatch, model: Any, lookup: dict[str, int], sql: str, params: list[Any]
) -> None:
    """One UPDATE (in `batch`) in the common case; the row is created
    (race-free) only for a payer's or merchant's first payment. The UPDATE
    is SQL: its ORM form (three CASEs) cost more CPU to compile than the
    database took to run it, on every payment."""

    def create_then_update() -> None:
        model.objects.bulk_create([model(**lookup)], ignore_conflicts=True)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    batch.raw(sql, params, if_none=create_then_update)


def _update_payer_state(batch: WriteBatch, ctx: PaymentContext, *, count_usual: bool) -> None:
    """One UPDATE, no read-modify-write: concurrent payments of one payer
    cannot lose each other's amounts, and a new day/year starts from zero.
    (SET expressions all read the row as it was, so `day` is compared
    before it is set.)"""
    ops = connection.ops
    today, year = _local_day_year(ctx.occurred_at)
    day = ops.adapt_datefield_value(today)
    free = 0 if ctx.password_verified else ctx.amount
    sets = [
        "day_total = CASE WHEN day = %s THEN day_total + %s ELSE %s END",
        "day_password_free_total = CASE WHEN day = %s THEN day_password_free_total + %s ELSE %s END",
        "day = %s",
        "year_total = CASE WHEN year = %s THEN year_total + %s ELSE %s END",
        "year = %s",
        "lifetime_total = lifetime_total + %s",
    ]
    params: list[Any] = [day, ctx.amount, ctx.amount, day, free, free, day]
    params += [year, ctx.amount, ctx.amount, year, ctx.amount]
    lat = ctx.latitude if ctx.latitude is not None else ctx.shop_latitude
    lon = ctx.longitude if ctx.longitude is not None else ctx.shop_longitude
    if lat is not None and lon is not None:
        # Only a later payment moves the payer's last known place.
        at = ops.adapt_datetimefield_value(ctx.occurred_at)
        newer = "last_at IS NULL OR last_at <= %s"
        sets += [
            f"last_latitude = CASE WHEN {newer} THEN %s ELSE last_latitude END",
            f"last_longitude = CASE WHEN {newer} THEN %s ELSE last_longitude END",
            f"last_at = CASE WHEN {newer} THEN %s ELSE last_at END",
        ]
        params += [at, float(lat), at, float(lon), at, at]
    if count_usual:
        sets += ["payments_count = payments_count + 1", "payments_sum = payments_sum + %s"]
        params.append(ctx.amount)
    table = PayerRiskState._meta.db_table
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE payer_id = %s"  # noqa: S608 (fixed parts)
    _state_update(batch, PayerRiskState, {"payer_id": ctx.payer_id}, sql, [*params, ctx.payer_id])


def _update_merchant_usual_amounts(batch: WriteBatch, ctx: PaymentContext) -> None:
    slot = secrets.randbelow(MERCHANT_STATE_SLOTS)
    table = MerchantRiskState._meta.db_table
    _state_update(
        batch,
        MerchantRiskState,
        {"merchant_id": ctx.merchant_id, "slot": slot},
        f"UPDATE {table} SET payments_count = payments_count + 1, "  # noqa: S608
        "payments_sum = payments_sum + %s WHERE merchant_id = %s AND slot = %s",
        [ctx.amount, ctx.merchant_id, slot],
    )


def _record_counters(ctx: PaymentContext, decision_public_id: str, outcome: str) -> None:
    keys = _counter_keys(ctx)
    names = ["payer", "terminal", "merchant", "merchant_all"]
    if outcome == PaymentOutcome.DECLINED:
        names.append("declines")
    if outcome in (PaymentOutcome.DECLINED, PaymentOutcome.HELD):
        names.append("merchant_negative")
    store = counter_store()
    now = ctx.occurred_at.timestamp()
    try:
        store.add(
            [k for n in names if (k := keys[n]) is not None], now=now, member=decision_public_id
        )
        if outcome in (PaymentOutcome.DECLINED, PaymentOutcome.HELD):
            _circuit_breaker_check(ctx, now=now)
    except CounterUnavailable as exc:
        _counters_down(ctx, where="record", error=str(exc))


def _circuit_breaker_check(ctx: PaymentContext, *, now: float) -> None:
    """Many holds/declines at one merchant usually mean a rule misfires for
    that shop (or the shop is under attack): compliance must look, rather
    than the rules silently blocking the whole shop."""
    rule = config_snapshot().effective(ctx.merchant_mcc, ctx.merchant_id).get("breaker.merchant")
    if rule is None or rule.mode == RuleMode.DISABLED:
        return
    window = int(rule.params["window_s"])
    keys = _counter_keys(ctx)
    counts = counter_store().counts(
        [
            CounterQuery("all", keys["merchant_all"] or "", window),
            CounterQuery("negative", keys["merchant_negative"] or "", window),
        ],
        now=now,
    )
    total, negative = counts["all"], counts["negative"]
    if (
        total < int(rule.params["min_payments"])
        or negative * 100 <= int(rule.params["max_share_pct"]) * total
    ):
        return
    bucket = int(now // window)
    alert_raise(
        kind="circuit_breaker",
        severity="critical" if rule.mode == RuleMode.ENABLED else "warning",
        title=f"Circuit breaker: {negative} of {total} payments held or declined in {window // 60} min",
        detail={
            "negative": negative,
            "total": total,
            "window_s": window,
            "rule_version": rule.version,
        },
        dedup_key=f"circuit_breaker:{ctx.merchant_id}:{bucket}",
        merchant=Merchant.objects.filter(pk=ctx.merchant_id).first(),
    )


def risk_record_payment(
    *,
    ctx: PaymentContext,
    decision: RiskDecision,
    outcome: str,
    payment_public_id: Any = None,
    batch: WriteBatch | None = None,
) -> None:
    """Tells risk what finally happened to a decided payment. Call it inside
    the payment's transaction once the result is known (approved, held or
    declined). The decision record (written now if risk_decide did not),
    totals and usual amounts commit with the payment; Redis counters are
    written after commit, so a rolled-back payment never counts. With
    `batch` its writes go out when the caller executes the batch."""
    outcome = PaymentOutcome(outcome)
    record = decision.record
    record.payment_outcome, record.payment_public_id = outcome, payment_public_id
    # The detectors' sweep (risk_payment_detectors_sweep) picks it up once
    # committed: nothing to enqueue per payment, nothing lost with a queue.
    record.detectors_pending = True
    own_batch = batch is None
    if own_batch:
        batch = WriteBatch()
    if record.pk is None:
        batch.insert(record)
    else:
        batch.update(record, ["payment_outcome", "payment_public_id", "detectors_pending"])
    if outcome in (PaymentOutcome.APPROVED, PaymentOutcome.HELD):
        _update_payer_state(batch, ctx, count_usual=outcome == PaymentOutcome.APPROVED)
    if outcome == PaymentOutcome.APPROVED:
        _update_merchant_usual_amounts(batch, ctx)
    store = counter_store()
    if hasattr(store, "client"):
        transaction.on_commit(lambda: _record_counters(ctx, decision.public_id, outcome))
    else:
        # The database store counts in the transaction, after the batch (a
        # circuit-breaker alert writes its own audit record).
        batch.after(lambda: _record_counters(ctx, decision.public_id, outcome))
    if own_batch:
        batch.execute()


def risk_password_failure_record(*, payer_id: int, occurred_at: datetime | None = None) -> None:
    """A wrong payment password for this payer (the payment service calls it
    on every failed step-up); feeds velocity.wrong_password."""
    now = (occurred_at or clock.risk_now()).timestamp()
    try:
        counter_store().add([f"w:{payer_id}"], now=now, member=uuid.uuid4().hex)
    except CounterUnavailable as exc:
        _counters_down(None, where="password_failure", error=str(exc))


def risk_payer_password_free_limit_set(
    *, payer_id: int, limit: int | None, actor: Any = None
) -> None:
    """The payer lowers (or resets, with None) their password-free daily
    amount. It can only lower the policy's limit: the rule takes the minimum."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError("limit must be a non-negative int of fen, or None")
    with transaction.atomic():
        PayerRiskState.objects.get_or_create(payer_id=payer_id)
        PayerRiskState.objects.filter(payer_id=payer_id).update(password_free_daily_limit=limit)
        audit_record(
            action="risk.password_free_limit_set",
            actor=actor,
            data={"payer_id": payer_id, "limit": limit},
        )

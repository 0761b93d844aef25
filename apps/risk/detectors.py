"""Async detectors: patterns across payments that no single real-time
decision can see. They run after commit (Celery) over risk's own per-payment
records (RiskDecisionRecord rows whose payment outcome is known, and
RefundSignal rows), never over the payments table, and each query is an
indexed range over one payer, terminal or merchant and a short window.

Findings become alerts (deduplicated per subject and window) and, where the
payer's money is at stake, a case for compliance.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from apps.risk import clock
from apps.risk.config import config_snapshot
from apps.risk.models import PaymentOutcome, RefundSignal, RiskCase, RiskDecisionRecord
from apps.risk.rules import LOCAL_TZ

# Tunables (kept in code; the real-time rules are the ones compliance edits).
SPLIT_WINDOW = timedelta(minutes=30)
SPLIT_BAND_PCT = 10  # within 10% under a limit
SPLIT_MIN_COUNT = 3
NIGHT_HOURS = range(0, 6)
ROUND_UNIT = 10_000  # ¥100
ROUND_WINDOW = timedelta(hours=6)
ROUND_MIN_COUNT = 3
MANY_MERCHANTS_WINDOW = timedelta(minutes=10)
MANY_MERCHANTS_MIN = 4
TERMINAL_HISTORY = timedelta(days=7)
TERMINAL_FACTOR = 5
TERMINAL_MIN_HOURLY = 20
REFUND_WINDOW = timedelta(hours=24)
REFUND_MIN_COUNT = 5
REFUND_RATIO_PCT = 30
REFUND_SPIKE_FACTOR = 3

DONE = (PaymentOutcome.APPROVED, PaymentOutcome.HELD)


def _finding(
    *,
    kind: str,
    title: str,
    detail: dict[str, Any],
    dedup_key: str,
    merchant_id: int | None,
    open_case: bool = False,
    payer_id: int | None = None,
) -> dict[str, Any]:
    from apps.accounts.models import Merchant
    from apps.risk.services import alert_raise, risk_case_open

    merchant = Merchant.objects.filter(pk=merchant_id).first() if merchant_id else None
    alert = alert_raise(
        kind=kind,
        severity="warning",
        title=title,
        detail=detail,
        dedup_key=dedup_key,
        merchant=merchant,
    )
    if open_case and alert.occurrences == 1:
        risk_case_open(
            kind=RiskCase.Kind.DETECTOR,
            title=title,
            merchant=merchant,
            payer_id=payer_id,
            detail={"detector": kind, **detail},
            actor="system:risk-detectors",
        )
    return {"kind": kind, **detail}


def _limits(record: RiskDecisionRecord) -> list[tuple[str, int]]:
    mcc = record.context.get("merchant_mcc", "")
    rules = config_snapshot().effective(mcc, record.merchant_id)
    return [
        ("amount.single_limit", int(rules["amount.single_limit"].params["max_amount"])),
        (
            "amount.password_free_daily",
            int(rules["amount.password_free_daily"].params["daily_limit"]),
        ),
    ]


def detect_split_payments(record: RiskDecisionRecord) -> list[dict]:
    since = record.occurred_at - SPLIT_WINDOW
    found = []
    for rule, limit in _limits(record):
        low = limit - limit * SPLIT_BAND_PCT // 100
        if not (low <= record.amount < limit):
            continue
        near = RiskDecisionRecord.objects.filter(
            payer_id=record.payer_id,
            occurred_at__gte=since,
            occurred_at__lte=record.occurred_at,
            amount__gte=low,
            amount__lt=limit,
            payment_outcome__in=DONE,
        ).aggregate(n=Count("id"), total=Sum("amount"))
        if near["n"] >= SPLIT_MIN_COUNT:
            found.append(
                _finding(
                    kind="split_payments",
                    title=f"Payer {record.payer_id}: {near['n']} payments just under the {rule} limit in {SPLIT_WINDOW}",
                    detail={
                        "payer_id": record.payer_id,
                        "count": near["n"],
                        "total": near["total"],
                        "limit": limit,
                        "rule": rule,
                    },
                    dedup_key=f"split_payments:{record.payer_id}:{record.occurred_at:%Y%m%d}",
                    merchant_id=record.merchant_id,
                    open_case=True,
                    payer_id=record.payer_id,
                )
            )
    return found


def detect_round_amounts_at_night(record: RiskDecisionRecord) -> list[dict]:
    local = record.occurred_at.astimezone(LOCAL_TZ)
    if local.hour not in NIGHT_HOURS or record.amount % ROUND_UNIT:
        return []
    rows = RiskDecisionRecord.objects.filter(
        payer_id=record.payer_id,
        occurred_at__gte=record.occurred_at - ROUND_WINDOW,
        occurred_at__lte=record.occurred_at,
        payment_outcome__in=DONE,
    ).values_list("occurred_at", "amount")
    night_round = [
        a for at, a in rows if at.astimezone(LOCAL_TZ).hour in NIGHT_HOURS and a % ROUND_UNIT == 0
    ]
    if len(night_round) < ROUND_MIN_COUNT:
        return []
    return [
        _finding(
            kind="round_amounts_at_night",
            title=f"Payer {record.payer_id}: {len(night_round)} round amounts at night",
            detail={
                "payer_id": record.payer_id,
                "count": len(night_round),
                "total": sum(night_round),
            },
            dedup_key=f"round_night:{record.payer_id}:{local:%Y%m%d}",
            merchant_id=record.merchant_id,
            open_case=True,
            payer_id=record.payer_id,
        )
    ]


def detect_many_merchants(record: RiskDecisionRecord) -> list[dict]:
    merchants = (
        RiskDecisionRecord.objects.filter(
            payer_id=record.payer_id,
            occurred_at__gte=record.occurred_at - MANY_MERCHANTS_WINDOW,
            occurred_at__lte=record.occurred_at,
        )
        .exclude(payment_outcome="")
        .values("merchant_id")
        .distinct()
        .count()
    )
    if merchants < MANY_MERCHANTS_MIN:
        return []
    return [
        _finding(
            kind="payer_many_merchants",
            title=f"Payer {record.payer_id} paid at {merchants} merchants within {MANY_MERCHANTS_WINDOW}",
            detail={"payer_id": record.payer_id, "merchants": merchants},
            dedup_key=f"many_merchants:{record.payer_id}:{record.occurred_at:%Y%m%d%H}",
            merchant_id=None,
            open_case=True,
            payer_id=record.payer_id,
        )
    ]


def detect_terminal_volume(record: RiskDecisionRecord) -> list[dict]:
    if record.terminal_id is None:
        return []
    at = record.occurred_at
    base = RiskDecisionRecord.objects.filter(terminal_id=record.terminal_id)
    last_hour = base.filter(occurred_at__gt=at - timedelta(hours=1), occurred_at__lte=at).count()
    if last_hour < TERMINAL_MIN_HOURLY:
        return []
    history = base.filter(
        occurred_at__gt=at - TERMINAL_HISTORY, occurred_at__lte=at - timedelta(hours=1)
    ).count()
    hourly = history / (TERMINAL_HISTORY.total_seconds() / 3600 - 1)
    if last_hour <= TERMINAL_FACTOR * max(hourly, 1.0):
        return []
    return [
        _finding(
            kind="terminal_unusual_volume",
            title=f"Terminal {record.terminal_id}: {last_hour} payments in an hour (usual {hourly:.1f}/h)",
            detail={
                "terminal_id": record.terminal_id,
                "last_hour": last_hour,
                "usual_hourly": round(hourly, 2),
            },
            dedup_key=f"terminal_volume:{record.terminal_id}:{at:%Y%m%d%H}",
            merchant_id=record.merchant_id,
        )
    ]


PAYMENT_DETECTORS = (
    detect_split_payments,
    detect_round_amounts_at_night,
    detect_many_merchants,
    detect_terminal_volume,
)


def risk_payment_detectors_sweep(*, batch_size: int = 500) -> int:
    """Runs the payment detectors over every decided payment they have not
    seen yet (detectors_pending, set with the payment's outcome and
    committed with it), oldest first, and clears the mark in the same
    transaction as the alerts they raise. Concurrent sweeps take disjoint
    records (SKIP LOCKED). Returns how many records were looked at."""
    seen = 0
    while True:
        with transaction.atomic():
            records = list(
                RiskDecisionRecord.objects.select_for_update(skip_locked=True)
                .filter(detectors_pending=True)
                .order_by("id")[:batch_size]
            )
            for record in records:
                for detector in PAYMENT_DETECTORS:
                    detector(record)
            RiskDecisionRecord.objects.filter(pk__in=[r.pk for r in records]).update(
                detectors_pending=False
            )
        seen += len(records)
        if len(records) < batch_size:
            return seen


def risk_payment_detectors_run(*, decision_id: int) -> list[dict]:
    record = RiskDecisionRecord.objects.filter(pk=decision_id).first()
    if record is None or not record.payment_outcome:
        return []
    found: list[dict] = []
    for detector in PAYMENT_DETECTORS:
        found += detector(record)
    return found


def detect_refund_ratio(*, now=None) -> list[dict]:
    """Merchants whose refunds in the last day are a large share of their
    payments and far above their own share of the week before."""
    now = now or clock.risk_now()
    since, week = now - REFUND_WINDOW, now - timedelta(days=8)
    refunds = (
        RefundSignal.objects.filter(occurred_at__gt=since)
        .values("merchant_id")
        .annotate(n=Count("id"), total=Sum("amount"))
        .filter(n__gte=REFUND_MIN_COUNT)
    )
    found = []
    for row in refunds:
        merchant_id = row["merchant_id"]
        paid = RiskDecisionRecord.objects.filter(
            merchant_id=merchant_id, payment_outcome=PaymentOutcome.APPROVED
        ).aggregate(
            day=Sum("amount", filter=Q(occurred_at__gt=since)),
            before=Sum("amount", filter=Q(occurred_at__gt=week, occurred_at__lte=since)),
        )
        refunded_before = (
            RefundSignal.objects.filter(
                merchant_id=merchant_id, occurred_at__gt=week, occurred_at__lte=since
            ).aggregate(t=Sum("amount"))["t"]
            or 0
        )
        day_paid = paid["day"] or 0
        ratio = row["total"] * 100 / day_paid if day_paid else 100.0
        before_ratio = refunded_before * 100 / paid["before"] if paid["before"] else 0.0
        if ratio >= REFUND_RATIO_PCT and ratio >= REFUND_SPIKE_FACTOR * before_ratio:
            found.append(
                _finding(
                    kind="refund_ratio_spike",
                    title=f"Refunds at {ratio:.0f}% of payments in the last day (before: {before_ratio:.0f}%)",
                    detail={
                        "merchant_id": merchant_id,
                        "refunds": row["n"],
                        "refunded": row["total"],
                        "paid": day_paid,
                        "ratio_pct": round(ratio, 1),
                        "before_pct": round(before_ratio, 1),
                    },
                    dedup_key=f"refund_ratio:{merchant_id}:{now:%Y%m%d}",
                    merchant_id=merchant_id,
                )
            )
    return found


def risk_record_refund(*, merchant_id: int, amount: int, occurred_at=None) -> None:
    """The refund service tells risk of each refund inside the refund's own
    transaction (apps/transactions/services/payments.py, _refund_apply): a
    refund that rolls back never counts and one that commits always does,
    which an after-commit hook could not promise (a crash between COMMIT
    and the hook would lose it). The detector itself runs later (the
    risk-detectors sweep)."""
    RefundSignal.objects.create(
        merchant_id=merchant_id, amount=amount, occurred_at=occurred_at or clock.risk_now()
    )

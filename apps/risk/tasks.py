"""Thin Celery wrappers: load by id, call one service, record the run."""

from __future__ import annotations

from celery import shared_task

from apps.core.models import ScheduledRun
from apps.risk import monitoring, services
from apps.risk.counters import counter_store, now_ts
from apps.risk.detectors import detect_refund_ratio, risk_payment_detectors_sweep


@shared_task(name="apps.risk.tasks.risk_payment_detectors")
def risk_payment_detectors() -> int:
    seen = risk_payment_detectors_sweep()
    ScheduledRun.record("risk-payment-detectors")
    return seen


@shared_task(name="apps.risk.tasks.risk_detectors_sweep")
def risk_detectors_sweep() -> int:
    found = detect_refund_ratio()
    ScheduledRun.record("risk-detectors-sweep")
    return len(found)


@shared_task(name="apps.risk.tasks.risk_monitors_monitor")
def risk_monitors_monitor() -> list[str]:
    return monitoring.risk_monitors_monitor()


@shared_task(name="apps.risk.tasks.risk_holds_expire")
def risk_holds_expire() -> int:
    expired = services.risk_holds_expire()
    ScheduledRun.record("risk-holds-expire")
    return expired


@shared_task(name="apps.risk.tasks.risk_counters_prune")
def risk_counters_prune() -> int:
    pruned = counter_store().prune(now=now_ts())
    ScheduledRun.record("risk-counters-prune")
    return pruned

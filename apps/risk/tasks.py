"""Thin Celery wrappers: load by id, call one service, record the run."""

from __future__ import annotations

from celery import shared_task

from apps.core.models import ScheduledRun


@shared_task(name="apps.risk.tasks.risk_payment_detectors")
def risk_payment_detectors() -> int:
    from apps.risk.detectors import risk_payment_detectors_sweep

    seen = risk_payment_detectors_sweep()
    ScheduledRun.record("risk-payment-detectors")
    return seen


@shared_task(name="apps.risk.tasks.risk_detectors_sweep")
def risk_detectors_sweep() -> int:
    from apps.risk.detectors import detect_refund_ratio

    found = detect_refund_ratio()
    ScheduledRun.record("risk-detectors-sweep")
    return len(found)


@shared_task(name="apps.risk.tasks.risk_balance_monitor")
def risk_balance_monitor() -> dict:
    from apps.risk.monitoring import risk_balance_monitor_run

    return risk_balance_monitor_run().stats


@shared_task(name="apps.risk.tasks.risk_monitors_monitor")
def risk_monitors_monitor() -> list[str]:
    from apps.risk.monitoring import risk_monitors_monitor as check

    return check()


@shared_task(name="apps.risk.tasks.risk_holds_expire")
def risk_holds_expire() -> int:
    from apps.risk.services import risk_holds_expire as expire

    expired = expire()
    ScheduledRun.record("risk-holds-expire")
    return expired


@shared_task(name="apps.risk.tasks.risk_counters_prune")
def risk_counters_prune() -> int:
    from apps.risk.counters import counter_store, now_ts

    pruned = counter_store().prune(now=now_ts())
    ScheduledRun.record("risk-counters-prune")
    return pruned

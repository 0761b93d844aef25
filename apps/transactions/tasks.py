"""Periodic jobs of the transactions app (thin: the work is in services.py)."""

from celery import shared_task

from apps.core.models import ScheduledRun
from apps.transactions.monitoring import ledger_balance_monitor_run
from apps.transactions.services import idempotency_purge, payment_code_purge_expired


@shared_task(name="apps.transactions.tasks.payment_codes_purge")
def payment_codes_purge() -> int:
    deleted = payment_code_purge_expired()
    ScheduledRun.record("payment_codes_purge")
    return deleted


@shared_task(name="apps.transactions.tasks.idempotency_records_purge")
def idempotency_records_purge() -> int:
    deleted = idempotency_purge()
    ScheduledRun.record("idempotency_records_purge")
    return deleted


@shared_task(name="apps.transactions.tasks.ledger_balance_monitor")
def ledger_balance_monitor() -> dict:
    return ledger_balance_monitor_run().stats

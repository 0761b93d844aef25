"""Periodic jobs of the transactions app (thin: the work is in services.py)."""

from celery import shared_task

from apps.core.models import ScheduledRun
from apps.transactions.services import payment_code_purge_expired


@shared_task(name="apps.transactions.tasks.payment_codes_purge")
def payment_codes_purge() -> int:
    deleted = payment_code_purge_expired()
    ScheduledRun.record("payment_codes_purge")
    return deleted


@shared_task(name="apps.transactions.tasks.idempotency_records_purge")
def idempotency_records_purge() -> int:
    from apps.transactions.services import idempotency_purge

    deleted = idempotency_purge()
    ScheduledRun.record("idempotency_records_purge")
    return deleted

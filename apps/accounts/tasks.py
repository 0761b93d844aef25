"""Periodic jobs of accounts (thin wrappers around services)."""

from celery import shared_task

from apps.core.models import ScheduledRun


@shared_task(name="apps.accounts.tasks.kyc_expire_due")
def kyc_expire_due() -> int:
    from apps.accounts.services import kyc_expire_due as expire

    expired = expire()
    ScheduledRun.record("accounts-kyc-expire")
    return expired

"""Thin Celery wrappers; the work is in services."""

from __future__ import annotations

from celery import shared_task

from apps.core.models import ScheduledRun


@shared_task(name="apps.backups.tasks.backup_tick")
def backup_tick() -> dict:
    from apps.backups.services import backup_tick as tick

    ScheduledRun.record("backups-tick")
    return tick()


@shared_task(name="apps.backups.tasks.backup_staleness_check")
def backup_staleness_check() -> str | None:
    from apps.backups.services import backup_staleness_check as check

    ScheduledRun.record("backups-staleness")
    return check()


@shared_task(name="apps.backups.tasks.backup_create", acks_late=False)
def backup_create(*, trigger: str, actor: str = "") -> str:
    # acks_late off: a backup must not be redelivered and run twice when a
    # worker restarts; an interrupted run is reaped and alerted instead.
    from apps.backups.services import backup_create as create

    return str(create(trigger=trigger, actor=actor or None).public_id)

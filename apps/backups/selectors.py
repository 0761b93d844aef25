from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

from apps.backups.models import BackupPolicy, BackupReplica, BackupRun, RestoreDrill

COMPLETED = [BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL]


def backup_runs_restorable() -> QuerySet[BackupRun]:
    return BackupRun.objects.filter(
        status__in=COMPLETED, replicas__status=BackupReplica.Status.VERIFIED
    ).distinct()


def backup_latest_restorable() -> BackupRun | None:
    return backup_runs_restorable().order_by("-started_at").first()


def backup_run_resolve(ref: str) -> BackupRun | None:
    """`latest`, a run's public id, or its catalog number."""
    if ref == "latest":
        return backup_latest_restorable()
    try:
        return BackupRun.objects.filter(public_id=uuid.UUID(ref)).first()
    except ValueError:
        pass
    if ref.isdigit():
        return BackupRun.objects.filter(pk=int(ref)).first()
    return None


def backup_slot_latest(policy: BackupPolicy, now: datetime) -> datetime:
    """The most recent scheduled slot at or before `now` (UTC): every
    `every_hours` hours counted from `start_hour_utc`."""
    utc_now = now.astimezone(UTC)
    base = utc_now.replace(hour=policy.start_hour_utc, minute=0, second=0, microsecond=0)
    if base > utc_now:
        base -= timedelta(days=1)
    step = timedelta(hours=policy.every_hours)
    return base + step * ((utc_now - base) // step)


def backup_due(policy: BackupPolicy, now: datetime) -> bool:
    if not policy.enabled:
        return False
    slot = backup_slot_latest(policy, now)
    # Any run since the slot that did not fail counts, and so does a failed
    # scheduled one (its alert went out; retrying every tick would flood).
    return (
        not BackupRun.objects.filter(started_at__gte=slot)
        .filter(~Q(status=BackupRun.Status.FAILED) | Q(trigger=BackupRun.Trigger.SCHEDULED))
        .exists()
    )


def drill_due(policy: BackupPolicy, now: datetime) -> bool:
    if not policy.drill_enabled:
        return False
    return not RestoreDrill.objects.filter(
        started_at__gt=now - timedelta(hours=policy.drill_every_hours)
    ).exists()


def backup_health(now: datetime) -> dict:
    """/healthz's view of backups: the last run, the last good one and
    whether that is older than the policy allows (ok None: none yet)."""
    policy = BackupPolicy.objects.filter(pk=1).first()  # read only: never create it here
    max_age = timedelta(hours=policy.max_age_hours if policy else 26)
    last = BackupRun.objects.order_by("-started_at").first()
    good = (
        BackupRun.objects.filter(status=BackupRun.Status.SUCCEEDED).order_by("-started_at").first()
    )
    return {
        "ok": None if last is None else good is not None and now - good.started_at <= max_age,
        "last_run_at": last.started_at.isoformat() if last else None,
        "last_status": last.status if last else None,
        "last_good_at": good.started_at.isoformat() if good else None,
        "age_seconds": int((now - good.started_at).total_seconds()) if good else None,
        "stale_after_seconds": int(max_age.total_seconds()),
    }

"""What compliance sees first in the admin (templates/admin/index.html):
the review queues with their oldest items and ages, open risk cases, open
alerts, the last run of every scheduled job against its schedule, and the
last backup and restore drill. Each figure is one indexed query or a small
table read; nothing counts a table of payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import KybApplication, KycApplication
from apps.backups.models import BackupPolicy, BackupRun, RestoreDrill
from apps.core.heartbeats import liveness_all, liveness_problems
from apps.core.models import ScheduledRun
from apps.risk.models import Alert, RiskCase
from apps.risk.selectors import alerts_open_by_severity, monitor_latest_runs

QUEUE_SHOWN = 5
# A review or case older than this is flagged on the dashboard.
REVIEW_AGE_WARNING = timedelta(hours=24)


@dataclass(frozen=True)
class JobRun:
    name: str
    last_run_at: datetime | None
    runs: int
    every: timedelta | None
    late: bool


def _schedule_intervals() -> dict[str, timedelta]:
    """Each beat entry's interval, by entry name and by task function name
    (jobs record their run under one or the other)."""
    intervals: dict[str, timedelta] = {}
    for name, entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).items():
        every = entry.get("schedule")
        if isinstance(every, timedelta):
            intervals[name] = every
            intervals[entry["task"].rsplit(".", 1)[-1]] = every
    return intervals


def scheduled_jobs(now: datetime) -> list[JobRun]:
    """Every job that has run, plus every scheduled job that never did; late
    means no run within twice its interval (beat or a worker is down)."""
    intervals = _schedule_intervals()
    runs = {r.name: r for r in ScheduledRun.objects.order_by("name")}
    jobs = []
    for name, run in runs.items():
        every = intervals.get(name)
        late = bool(every and now - run.last_run_at > 2 * every)
        jobs.append(JobRun(name, run.last_run_at, run.runs, every, late))
    scheduled = getattr(settings, "CELERY_BEAT_SCHEDULE", {})
    for name, entry in scheduled.items():
        task_name = entry["task"].rsplit(".", 1)[-1]
        if name not in runs and task_name not in runs:
            jobs.append(JobRun(name, None, 0, intervals.get(name), True))
    return sorted(jobs, key=lambda j: (not j.late, j.name))


def _queue(model: Any, now: datetime) -> dict:
    submitted = model.objects.filter(status="submitted")
    oldest = list(submitted.order_by("submitted_at", "pk")[:QUEUE_SHOWN])
    return {
        "count": submitted.count(),
        "oldest": [
            {
                "obj": o,
                "age": now - (o.submitted_at or now),
                "late": bool(o.submitted_at and now - o.submitted_at > REVIEW_AGE_WARNING),
            }
            for o in oldest
        ],
        "changelist": f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist",
        "change": f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
        "next": f"admin:{model._meta.app_label}_{model._meta.model_name}_next",
    }


def compliance_dashboard() -> dict:
    now = timezone.now()
    open_cases = RiskCase.objects.filter(status__in=RiskCase.OPEN_STATUSES)
    case_rows = list(open_cases.select_related("merchant").order_by("created_at", "pk")[:10])
    alerts = alerts_open_by_severity()
    policy = BackupPolicy.objects.filter(pk=1).first()  # read only: never create it here
    max_age = timedelta(hours=policy.max_age_hours if policy else 26)
    last_backup = BackupRun.objects.order_by("-started_at").first()
    last_good_backup = (
        BackupRun.objects.filter(status=BackupRun.Status.SUCCEEDED).order_by("-started_at").first()
    )
    return {
        "now": now,
        "kyc": _queue(KycApplication, now),
        "kyb": _queue(KybApplication, now),
        "cases": {
            "count": open_cases.count(),
            "by_kind": [
                (RiskCase.Kind(kind).label if kind in RiskCase.Kind.values else kind, n)
                for kind, n in open_cases.order_by().values_list("kind").annotate(n=Count("id"))
            ],
            "oldest": [
                {
                    "obj": c,
                    "age": now - c.created_at,
                    "late": now - c.created_at > REVIEW_AGE_WARNING,
                }
                for c in case_rows
            ],
        },
        "alerts": {
            "count": Alert.objects.exclude(status=Alert.Status.RESOLVED).count(),
            "critical": sum(1 for a in alerts if a.severity == "critical"),
            "top": alerts[:10],
        },
        "jobs": scheduled_jobs(now),
        # Worker or beat not seen (with a broker): nothing in the background runs.
        "background_problems": liveness_problems(liveness_all(now), now),
        "monitors": monitor_latest_runs(),
        "backup": {
            "last": last_backup,
            "last_good": last_good_backup,
            "max_age": max_age,
            "stale": not last_good_backup or now - last_good_backup.started_at > max_age,
            "drill": RestoreDrill.objects.order_by("-started_at").first(),
        },
    }

"""The monitor of the monitors: every scheduled job that stopped running is
itself an alarm. (The ledger's balance monitoring is
apps/transactions/monitoring.py; its runs are MonitorRun rows here.)"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.models import ScheduledRun
from apps.risk.models import MonitoredJob
from apps.risk.services import alert_raise

logger = logging.getLogger(__name__)

BALANCE_MONITOR = "risk-balance-monitor"
# Jobs whose silence is itself an alarm even if they never ran at all.
ALWAYS_EXPECTED = (
    "core-heartbeat",
    "risk-balance-monitor",
    "risk-holds-expire",
    "risk-detectors-sweep",
    "risk-payment-detectors",
)


def _interval(entry: dict) -> timedelta | None:
    schedule = entry.get("schedule")
    if isinstance(schedule, timedelta):
        return schedule
    if isinstance(schedule, int | float):
        return timedelta(seconds=schedule)
    run_every = getattr(schedule, "run_every", None)
    return run_every if isinstance(run_every, timedelta) else None


def risk_monitors_monitor(*, now=None) -> list[str]:
    """Alerts for every scheduled job that did not run within twice its
    interval (plus a minute). Jobs record their runs in core.ScheduledRun
    under their beat entry name. Returns the late jobs' names."""
    now = now or timezone.now()
    runs = {r.name: r.last_run_at for r in ScheduledRun.objects.all()}
    late = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        interval = _interval(entry)
        if interval is None or name == "risk-monitors-monitor":
            continue
        last = runs.get(name)
        if last is None and name not in ALWAYS_EXPECTED:
            continue  # a job that does not record its runs cannot be judged
        allowed = interval * 2 + timedelta(minutes=1)
        if last is not None and now - last <= allowed:
            continue
        if last is None:
            watch, _ = MonitoredJob.objects.get_or_create(
                name=name, defaults={"first_expected_at": now}
            )
            if now - watch.first_expected_at <= allowed:
                continue  # not due yet since we started expecting it
        late.append(name)
        alert_raise(
            kind="monitor_missed",
            severity="critical",
            title=f"Scheduled job {name} did not run in its window ({allowed})"
            if last
            else f"Scheduled job {name} has never run",
            detail={
                "job": name,
                "last_run_at": last.isoformat() if last else None,
                "allowed": str(allowed),
            },
            dedup_key=f"monitor_missed:{name}",
        )
    ScheduledRun.record("risk-monitors-monitor")
    return late

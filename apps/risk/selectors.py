"""Reads of risk: the compliance dashboard and the merchant's view of holds."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from apps.core.models import ScheduledRun
from apps.risk.models import Alert, MonitorRun, RiskCase, RiskHold

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def alerts_open_by_severity(limit: int = 50) -> list[Alert]:
    """The newest `limit` unresolved alerts, most severe first."""
    alerts = list(
        Alert.objects.exclude(status=Alert.Status.RESOLVED)
        .select_related("merchant")
        .order_by("-last_seen_at")[:limit]
    )
    alerts.sort(key=lambda a: SEVERITY_ORDER.get(a.severity, 9))
    return alerts


def monitor_latest_runs() -> list[MonitorRun]:
    """The last run of every monitor: one (name, -started_at) index read per
    monitor name (a handful), never a scan of the runs."""
    latest = []
    for name in MonitorRun.objects.order_by().values_list("name", flat=True).distinct():
        run = MonitorRun.objects.filter(name=name).order_by("-started_at").first()
        if run:
            latest.append(run)
    return latest


def risk_dashboard() -> dict[str, Any]:
    """Open cases (oldest first), open alerts (most severe, newest first) and
    the last run of every scheduled job and monitor."""
    open_cases = RiskCase.objects.filter(status__in=RiskCase.OPEN_STATUSES)
    return {
        "open_cases": list(
            open_cases.select_related("merchant", "assigned_to").order_by("created_at")[:50]
        ),
        "open_case_counts": dict(
            open_cases.values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
        ),
        "alerts": alerts_open_by_severity(),
        "scheduled_runs": list(ScheduledRun.objects.order_by("name")),
        "monitor_runs": monitor_latest_runs(),
    }


def risk_holds_for_merchant(*, merchant: Any) -> QuerySet[RiskHold]:
    """A merchant's held payments and their status, never the rules."""
    return RiskHold.objects.for_merchant(merchant).order_by("-created_at")


def risk_case_next_for_reviewer(*, reviewer: Any) -> RiskCase | None:
    """The case a reviewer takes next: the oldest open one that is unassigned
    or assigned to them, not locked by someone else (an expired lock is no
    lock), and not one whose first approval they gave (the second approver
    must be someone else; a case still assigned to its first approver is
    anyone else's to take). The (status, created_at) index serves it."""
    return (
        RiskCase.objects.filter(status__in=RiskCase.OPEN_STATUSES)
        .filter(
            Q(assigned_to__isnull=True)
            | Q(assigned_to=reviewer)
            | Q(status=RiskCase.Status.AWAITING_SECOND, assigned_to=F("first_approved_by"))
        )
        .filter(
            Q(locked_by__isnull=True) | Q(locked_by=reviewer) | Q(locked_until__lte=timezone.now())
        )
        .exclude(first_approved_by=reviewer)
        .order_by("created_at", "pk")
        .first()
    )

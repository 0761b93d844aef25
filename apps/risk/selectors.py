"""Reads of risk: the compliance dashboard and the merchant's view of holds."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from apps.core.models import ScheduledRun
from apps.risk.models import Alert, MonitorRun, RiskCase, RiskHold


def risk_dashboard() -> dict[str, Any]:
    """Open cases (oldest first), open alerts (most severe, newest first) and
    the last run of every scheduled job and monitor."""
    open_cases = RiskCase.objects.filter(status__in=RiskCase.OPEN_STATUSES)
    severity_rank = {"critical": 0, "warning": 1, "info": 2}
    alerts = list(
        Alert.objects.exclude(status=Alert.Status.RESOLVED)
        .select_related("merchant")
        .order_by("-last_seen_at")[:50]
    )
    alerts.sort(key=lambda a: severity_rank.get(a.severity, 9))
    latest_runs = []
    for name in MonitorRun.objects.values_list("name", flat=True).distinct():
        run = MonitorRun.objects.filter(name=name).order_by("-started_at").first()
        if run:
            latest_runs.append(run)
    return {
        "open_cases": list(
            open_cases.select_related("merchant", "assigned_to").order_by("created_at")[:50]
        ),
        "open_case_counts": dict(
            open_cases.values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
        ),
        "alerts": alerts,
        "scheduled_runs": list(ScheduledRun.objects.order_by("name")),
        "monitor_runs": latest_runs,
    }


def risk_holds_for_merchant(*, merchant: Any) -> QuerySet[RiskHold]:
    """A merchant's held payments and their status, never the rules."""
    return RiskHold.objects.for_merchant(merchant).order_by("-created_at")

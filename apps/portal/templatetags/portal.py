"""Template helpers of the portal: amounts as ¥1,234.56 (apps.core.money),
the human names of audit and security codes."""

from __future__ import annotations

from django import template

from apps.core.money import Money
from apps.portal import labels

register = template.Library()


@register.filter
def money(value, currency: str = "CNY") -> str:
    """Minor units (an int) or a Money, formatted: 123456 → ¥1,234.56."""
    if value is None or value == "":
        return ""
    if isinstance(value, Money):
        return value.format()
    return Money(int(value), currency or "CNY").format()


@register.filter
def action_label(code: str) -> str:
    return labels.action_label(code or "")


@register.filter
def security_event_label(kind: str) -> str:
    return labels.security_event_label(kind or "")


@register.filter
def severity_label(severity: str) -> str:
    return str(labels.SEVERITY_LABELS.get(severity, severity))


@register.simple_tag(takes_context=True)
def compliance_dashboard(context) -> dict:
    """The admin index's figures (apps.portal.admin_dashboard), built once
    per request although two blocks of the page show them."""
    from apps.portal.admin_dashboard import compliance_dashboard as build

    request = context.get("request")
    cached = getattr(request, "_compliance_dashboard", None)
    if cached is None:
        cached = build()
        if request is not None:
            request._compliance_dashboard = cached
    return cached


@register.filter
def age(delta) -> str:
    """A timedelta as a short age: 3 d 4 h, 5 h 12 min, 7 min."""
    if delta is None:
        return ""
    from django.utils.translation import gettext

    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return gettext("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return gettext("%(h)d h %(m)d min") % {"h": hours, "m": mins}
    return gettext("%(m)d min") % {"m": mins}


def _status_choices() -> dict:
    from apps.accounts.models.identity import ReviewStatus
    from apps.risk.models import RiskHold
    from apps.terminals.models import Terminal
    from apps.transactions.models import PaymentStatus

    return {
        "review": ReviewStatus,
        "payment": PaymentStatus,
        "terminal": Terminal.Status,
        "hold": RiskHold.Status,
    }


@register.filter
def status_label(value: str, kind: str) -> str:
    """A stored status code (e.g. in a history row) as its translated name:
    {{ change.to_status|status_label:"review" }}. Unknown codes pass."""
    choices = _status_choices().get(kind)
    if not value or choices is None or value not in choices.values:
        return value or ""
    return str(choices(value).label)

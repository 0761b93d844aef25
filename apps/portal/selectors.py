"""Reads for the portal's own pages: the merchant dashboard and the owner's
activity log. They only read other apps' models and selectors; every query
is scoped to one merchant and walks an index that starts with it."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_otp import devices_for_user

from apps.accounts.models import Merchant
from apps.accounts.selectors import kyb_latest_for_merchant
from apps.audit.models import AuditRecord, SecurityEvent
from apps.core.money import Money
from apps.portal.labels import family_prefixes
from apps.risk.models import RiskHold
from apps.terminals.models import Terminal
from apps.transactions.models import PAID_STATUSES, Payment, PaymentStatus, Refund
from apps.transactions.selectors import ledger_balance_for_merchant

CHART_DAYS = 30
# The chart's closed days (all but today) change only when an old payment is
# reversed or a hold is decided; a few minutes of staleness is fine for a
# chart, and it spares the database a 30-day aggregate on every page view.
CHART_CACHE_SECONDS = 300
ACTIVITY_PAGE = 50


@dataclass(frozen=True)
class DayVolume:
    day: date
    amount: int
    count: int


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _daily_volume(merchant: Merchant, since: datetime, until: datetime | None) -> dict[date, tuple]:
    rows = Payment.objects.filter(
        merchant=merchant, created_at__gte=since, status__in=PAID_STATUSES
    )
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    rows = (
        rows.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(amount=Sum("amount"), n=Count("id"))
        .values_list("day", "amount", "n")
    )
    return {day: (amount, n) for day, amount, n in rows}


def dashboard_volume_chart(*, merchant: Merchant, today: date) -> list[DayVolume]:
    """Paid volume per local (Asia/Shanghai) day, the last CHART_DAYS days
    with today last; days without payments are zero."""
    first = today - timedelta(days=CHART_DAYS - 1)
    key = f"portal:chart:{merchant.public_id}:{today.isoformat()}"
    closed = cache.get(key)
    if closed is None:
        closed = _daily_volume(merchant, _local_midnight(first), _local_midnight(today))
        cache.set(key, closed, CHART_CACHE_SECONDS)
    days = dict(closed)
    days.update(_daily_volume(merchant, _local_midnight(today), None))
    return [
        DayVolume(day=d, amount=days.get(d, (0, 0))[0] or 0, count=days.get(d, (0, 0))[1] or 0)
        for d in (first + timedelta(days=i) for i in range(CHART_DAYS))
    ]


def chart_svg_bars(series: list[DayVolume], *, width: int = 480, height: int = 170) -> dict:
    """Geometry of the server-rendered bar chart (no script needed): one bar
    per day, scaled to the busiest day, with three horizontal guide lines."""
    top = max((d.amount for d in series), default=0)
    pad_left, pad_bottom, pad_top = 8, 22, 8
    plot_h = height - pad_bottom - pad_top
    slot = (width - pad_left) / max(len(series), 1)
    bars = []
    for i, d in enumerate(series):
        h = round(plot_h * d.amount / top, 1) if top else 0
        if d.amount and h < 2:
            h = 2  # a day with sales is never invisible
        bars.append(
            {
                "x": round(pad_left + i * slot + slot * 0.15, 1),
                "y": round(pad_top + plot_h - h, 1),
                "w": round(slot * 0.7, 1),
                "h": h,
                "day": d.day,
                "money": Money(d.amount),
                "count": d.count,
                "label": d.day.strftime("%m-%d") if i % 5 == 4 or i == len(series) - 1 else "",
                "label_x": round(pad_left + i * slot + slot / 2, 1),
                "anchor": "end" if i == len(series) - 1 else "middle",
            }
        )
    guides = [round(pad_top + plot_h * f, 1) for f in (0, 0.5)]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "guides": guides,
        "baseline": pad_top + plot_h,
        "label_y": height - 6,
        "top": Money(top),
        "total": Money(sum(d.amount for d in series)),
        "count": sum(d.count for d in series),
    }


def _onboarding(merchant: Merchant, user: Any, terminal_active: bool) -> dict:
    active = merchant.status == Merchant.Status.ACTIVE
    if active and terminal_active:
        # The checklist is hidden once the shop takes payments: skip its queries.
        return {"active": True, "terminal": True}
    kyb = kyb_latest_for_merchant(merchant=merchant)
    return {
        "otp": any(d.confirmed for d in devices_for_user(user, confirmed=None)),
        "kyb_status": kyb.status if kyb else "",
        "kyb_submitted": bool(kyb and kyb.status in ("submitted", "approved")),
        "active": active,
        "terminal": terminal_active,
    }


def dashboard_for_merchant(*, merchant: Merchant, user: Any, show_security: bool) -> dict:
    """Everything the dashboard shows, in a handful of index-range queries
    (today's sales are the chart's last bar)."""
    today = timezone.localdate()
    midnight = _local_midnight(today)

    series = dashboard_volume_chart(merchant=merchant, today=today)
    refunds = Refund.objects.filter(merchant=merchant, created_at__gte=midnight).aggregate(
        n=Count("id"), amount=Sum("amount")
    )
    held = RiskHold.objects.for_merchant(merchant).filter(status=RiskHold.Status.HELD)
    held_totals = held.aggregate(n=Count("id"), amount=Sum("amount"))

    terminal_counts = dict(
        Terminal.objects.for_merchant(merchant)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    terminals = list(
        Terminal.objects.for_merchant(merchant)
        .exclude(status=Terminal.Status.RETIRED)
        .select_related("shop")
        .order_by("status", "-last_seen_at", "pk")[:6]
    )

    events: list[SecurityEvent] = []
    if show_security:
        events = list(
            SecurityEvent.objects.filter(merchant_id=str(merchant.public_id)).order_by(
                "-created_at"
            )[:8]
        )
    return {
        "today": today,
        "sales": {"count": series[-1].count, "money": Money(series[-1].amount)},
        "refunds": {"count": refunds["n"] or 0, "money": Money(refunds["amount"] or 0)},
        "held": {"count": held_totals["n"] or 0, "money": Money(held_totals["amount"] or 0)},
        "balance": ledger_balance_for_merchant(merchant=merchant),
        "chart": chart_svg_bars(series),
        "terminal_counts": {
            status: terminal_counts.get(status, 0)
            for status in (
                Terminal.Status.ACTIVE,
                Terminal.Status.PENDING,
                Terminal.Status.SUSPENDED,
            )
        },
        "terminal_total": sum(
            n for s, n in terminal_counts.items() if s != Terminal.Status.RETIRED
        ),
        "terminals": terminals,
        "security_events": events,
        "onboarding": _onboarding(
            merchant, user, bool(terminal_counts.get(Terminal.Status.ACTIVE))
        ),
        "recent_payments": list(
            Payment.objects.filter(merchant=merchant)
            .exclude(status=PaymentStatus.DECLINED)
            .select_related("terminal")
            .order_by("-created_at", "-id")[:5]
        ),
    }


# --- the owner's activity log ----------------------------------------------


def _cursor_encode(record: AuditRecord) -> str:
    raw = f"{record.created_at.isoformat()}|{record.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.split("|")
        when = datetime.fromisoformat(stamp)
        if timezone.is_naive(when):
            return None
        return when, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def activity_page_for_merchant(
    *, merchant: Merchant, family: str = "", after: str = "", limit: int = ACTIVITY_PAGE
) -> dict:
    """One page of the merchant's audit records, newest first. Keyset
    pagination on (created_at, id): the next page starts strictly below the
    last row seen, so page 1000 costs what page 1 costs (an index range scan
    of audit_merchant_recent). `family` narrows to one action prefix
    ("terminal", "payment", ...). A bad cursor is page one."""
    records = AuditRecord.objects.filter(merchant_id=str(merchant.public_id))
    if family:
        match = Q()
        for prefix in family_prefixes(family):
            match |= Q(action__startswith=prefix)
        records = records.filter(match)
    position = _cursor_decode(after) if after else None
    if position:
        when, pk = position
        records = records.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
    rows = list(records.order_by("-created_at", "-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "records": rows,
        "next_cursor": _cursor_encode(rows[-1]) if more and rows else "",
        "is_first_page": position is None,
    }

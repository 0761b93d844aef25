"""Which copies a retention policy keeps: the newest copy of each of the N
most recent days, ISO weeks and months that have one (UTC). The union is
kept; everything else may be pruned. Legal holds are handled by the caller
and never count against the quotas."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_PERIODS: dict[str, Callable[[datetime], Hashable]] = {
    "daily": lambda d: d.date(),
    "weekly": lambda d: d.isocalendar()[:2],
    "monthly": lambda d: (d.year, d.month),
}


def retention_keep(
    copies: Iterable[tuple[K, datetime]], *, daily: int, weekly: int, monthly: int
) -> set[K]:
    newest_first = sorted(copies, key=lambda c: c[1], reverse=True)
    keep: set[K] = set()
    for period, quota in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
        bucket_of = _PERIODS[period]
        seen: set[Hashable] = set()
        for key, when in newest_first:
            bucket = bucket_of(when)
            if bucket in seen:
                continue
            if len(seen) >= quota:
                break
            seen.add(bucket)
            keep.add(key)
    return keep

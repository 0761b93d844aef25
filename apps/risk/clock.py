"""The time risk decides at: the server's clock, read through one function.

Every time-dependent rule (business hours, night, impossible travel, the
velocity windows) reads the payment's `occurred_at`, which the engine takes
from `risk_now()` when the caller gives none. Keeping that one read here is
what lets a test pin "now" for the whole process (the live server's thread
included) without touching the clock the rest of the system relies on
(request signatures, audit timestamps, lock expiries).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def risk_now() -> datetime:
    """The current time as risk sees it (aware, UTC)."""
    return timezone.now()

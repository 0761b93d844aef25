"""What a risk decision is made of: the payment's context, the inputs read
for it, a rule's merged configuration and what a tripped rule reports.
Shared by the rules (rules.py) and the evaluation (decision.py); no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from typing import Any


@dataclass(frozen=True)
class PaymentContext:
    """Everything the payment service knows about a payment when it asks risk.

    Ids are the integer primary keys of the accounts/terminals rows. Amounts
    are integers of minor units (fen). `occurred_at` is an aware UTC datetime
    (the server's receipt time). `latitude`/`longitude` are what the terminal
    reported (None when it sent none). `password_verified` is True when the
    payer's payment password was checked for this payment (the step-up retry).
    """

    payer_id: int
    payer_account_class: str  # "none" | "I" | "II" | "III" (accounts.Payer.AccountClass)
    merchant_id: int
    merchant_mcc: str
    terminal_id: int | None
    shop_latitude: float | None
    shop_longitude: float | None
    shop_radius_m: int | None
    shop_opens_at: time | None
    shop_closes_at: time | None
    amount: int
    currency: str
    latitude: float | None
    longitude: float | None
    occurred_at: datetime
    password_verified: bool = False
    payment_public_id: str | None = None

    def __post_init__(self) -> None:
        if type(self.amount) is not int or self.amount <= 0:
            raise ValueError("amount must be a positive int of minor units")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be an aware datetime")

    def as_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in data.items():
            if isinstance(value, datetime | time | date):
                data[key] = value.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentContext:
        data = dict(data)
        data["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
        for key in ("shop_opens_at", "shop_closes_at"):
            if data.get(key):
                data[key] = time.fromisoformat(data[key])
        return cls(**data)


@dataclass
class DecisionInputs:
    """What the engine read for one decision: O(1) rows and one counter round
    trip. Stored with the decision so it can be replayed."""

    # payer totals (Asia/Shanghai day and year, already rolled over)
    payer_day_total: int = 0
    payer_day_password_free_total: int = 0
    payer_year_total: int = 0
    payer_lifetime_total: int = 0
    payer_payments_count: int = 0
    payer_payments_sum: int = 0
    payer_password_free_limit: int | None = None
    payer_last_latitude: float | None = None
    payer_last_longitude: float | None = None
    payer_last_at: str | None = None  # ISO datetime
    merchant_payments_count: int = 0
    merchant_payments_sum: int = 0
    # velocity: counts in each rule's window, before this payment
    velocity_available: bool = True
    velocity: dict[str, int] = field(default_factory=dict)
    # lists: codes of block entries that match, rules the allow entries skip
    blocked_by: list[str] = field(default_factory=list)
    allow_skips: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        # Shallow: the stored record serialises it at once.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DecisionInputs:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RuleHit:
    """A rule that tripped: its reason code, effect and the values it saw."""

    code: str
    reason: str
    outcome: str | None
    score: int
    values: dict[str, Any]
    version: str
    shadow: bool = False

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class EffectiveRule:
    """A rule's configuration for one merchant, all layers merged."""

    code: str
    mode: str
    params: dict[str, Any]
    version: str  # e.g. "default:v3+mcc:5814:v1"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    radius = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius * math.asin(min(1.0, math.sqrt(a)))

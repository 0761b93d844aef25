"""The real-time rules. Each has a code, a stable reason code, default
parameters (compliance overrides them per merchant category and per merchant
in the admin; see RuleConfig) and a check that returns the values it saw when
it trips, or None. A rule's effect is `outcome` (a direct outcome) when its
parameters name one, else `score` points towards the score thresholds.

Amounts are fen (integers); windows are seconds; times are Asia/Shanghai.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from apps.risk.context import DecisionInputs, PaymentContext, distance_m

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SCORE_THRESHOLDS = "score.thresholds"

Check = Callable[[PaymentContext, DecisionInputs, dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class RuleSpec:
    code: str
    reason: str
    title: str
    defaults: dict[str, Any]
    check: Check
    # The counter (velocity) this rule reads, with its window parameter.
    counter: str | None = None


def _local(dt: datetime) -> datetime:
    return dt.astimezone(LOCAL_TZ)


def _time_in(t: time, start: time, end: time) -> bool:
    """start <= t < end, where end <= start means the span crosses midnight."""
    if start == end:
        return True
    if start < end:
        return start <= t < end
    return t >= start or t < end


# --- amount -----------------------------------------------------------------


def _single_limit(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    if ctx.amount > int(p["max_amount"]):
        return {"amount": ctx.amount, "max_amount": int(p["max_amount"])}
    return None


def _kyc_class_limit(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    """PBoC account classes: class I ¥1,000 in total since opening; class II
    ¥100,000 a year; class III ¥200,000 a year; plus a daily cap per class.
    An unverified payer cannot pay at all."""
    cls = ctx.payer_account_class
    if cls not in ("I", "II", "III"):
        return {"reason": "kyc_unverified", "account_class": cls}
    day_after = inputs.payer_day_total + ctx.amount
    day_limit = p.get(f"class_{cls.lower()}_day")
    if day_limit is not None and day_after > int(day_limit):
        return {
            "reason": "kyc_day_limit",
            "account_class": cls,
            "total_after": day_after,
            "limit": int(day_limit),
        }
    if cls == "I":
        total_after, limit, reason = (
            inputs.payer_lifetime_total + ctx.amount,
            int(p["class_i_lifetime"]),
            "kyc_lifetime_limit",
        )
    else:
        total_after, limit, reason = (
            inputs.payer_year_total + ctx.amount,
            int(p[f"class_{cls.lower()}_year"]),
            "kyc_year_limit",
        )
    if total_after > limit:
        return {"reason": reason, "account_class": cls, "total_after": total_after, "limit": limit}
    return None


def _password_free_daily(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    if ctx.password_verified:
        return None
    limit = int(p["daily_limit"])
    if inputs.payer_password_free_limit is not None:
        limit = min(limit, inputs.payer_password_free_limit)  # the payer may only lower it
    total_after = inputs.payer_day_password_free_total + ctx.amount
    if total_after > limit:
        return {"total_after": total_after, "limit": limit}
    return None


def _unusual(count: int, total: int, ctx: PaymentContext, p: dict) -> dict | None:
    if count < int(p["min_history"]) or ctx.amount < int(p["min_amount"]):
        return None
    mean = total // count if count else 0
    # amount > multiplier × mean, in integers: amount * 1 > multiplier * mean
    if mean > 0 and ctx.amount > int(p["multiplier"]) * mean:
        return {
            "amount": ctx.amount,
            "usual_amount": mean,
            "multiplier": int(p["multiplier"]),
            "history": count,
        }
    return None


def _unusual_payer(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    return _unusual(inputs.payer_payments_count, inputs.payer_payments_sum, ctx, p)


def _unusual_merchant(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    return _unusual(inputs.merchant_payments_count, inputs.merchant_payments_sum, ctx, p)


# --- velocity ---------------------------------------------------------------


def _velocity(counter: str, *, include_this: bool) -> Check:
    def check(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
        if not inputs.velocity_available:
            # Redis configured but unreachable: never approve blind.
            return {"reason": "velocity_unavailable", "outcome": "hold", "counter": counter}
        seen = int(inputs.velocity.get(counter, 0))
        count = seen + 1 if include_this else seen
        if count > int(p["max_count"]):
            return {
                "count": count,
                "max_count": int(p["max_count"]),
                "window_s": int(p["window_s"]),
            }
        return None

    return check


# --- time -------------------------------------------------------------------


def _outside_hours(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    if ctx.shop_opens_at is None or ctx.shop_closes_at is None:
        return None
    local = _local(ctx.occurred_at).time()
    if _time_in(local, ctx.shop_opens_at, ctx.shop_closes_at):
        return None
    return {
        "local_time": local.strftime("%H:%M:%S"),
        "opens_at": ctx.shop_opens_at.strftime("%H:%M"),
        "closes_at": ctx.shop_closes_at.strftime("%H:%M"),
    }


def _night_large(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    local = _local(ctx.occurred_at).time()
    start, end = time.fromisoformat(p["night_starts"]), time.fromisoformat(p["night_ends"])
    if _time_in(local, start, end) and ctx.amount >= int(p["min_amount"]):
        return {
            "local_time": local.strftime("%H:%M:%S"),
            "amount": ctx.amount,
            "min_amount": int(p["min_amount"]),
        }
    return None


# --- location ---------------------------------------------------------------


def _terminal_moved(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    if ctx.shop_latitude is None or ctx.shop_longitude is None:
        return None
    if ctx.latitude is None or ctx.longitude is None:
        if p.get("missing_location_score"):
            return {"reason": "location_missing", "score": int(p["missing_location_score"])}
        return None
    distance = distance_m(ctx.shop_latitude, ctx.shop_longitude, ctx.latitude, ctx.longitude)
    radius = int(ctx.shop_radius_m if ctx.shop_radius_m is not None else p["default_radius_m"])
    allowed = radius + int(p["tolerance_m"])
    if distance > allowed:
        return {
            "distance_m": round(distance),
            "radius_m": radius,
            "tolerance_m": int(p["tolerance_m"]),
        }
    return None


def _impossible_travel(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    lat = ctx.latitude if ctx.latitude is not None else ctx.shop_latitude
    lon = ctx.longitude if ctx.longitude is not None else ctx.shop_longitude
    if lat is None or lon is None or inputs.payer_last_at is None:
        return None
    if inputs.payer_last_latitude is None or inputs.payer_last_longitude is None:
        return None
    distance = distance_m(inputs.payer_last_latitude, inputs.payer_last_longitude, lat, lon)
    if distance < int(p["min_distance_m"]):
        return None  # GPS jitter and neighbouring shops are not travel
    elapsed = (ctx.occurred_at - datetime.fromisoformat(inputs.payer_last_at)).total_seconds()
    if elapsed <= 0:
        # Same instant or out of order (clock skew, concurrent payments) yet
        # far apart: no finite speed explains it. Never divide by it.
        return {
            "distance_m": round(distance),
            "elapsed_s": elapsed,
            "speed_kmh": None,
            "max_speed_kmh": int(p["max_speed_kmh"]),
        }
    speed_kmh = (distance / 1000) / (elapsed / 3600)
    if speed_kmh > int(p["max_speed_kmh"]):
        return {
            "distance_m": round(distance),
            "elapsed_s": round(elapsed, 3),
            "speed_kmh": round(speed_kmh, 1),
            "max_speed_kmh": int(p["max_speed_kmh"]),
        }
    return None


# --- lists ------------------------------------------------------------------


def _block_list(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    if inputs.blocked_by:
        return {"entries": list(inputs.blocked_by)}
    return None


def _never(ctx: PaymentContext, inputs: DecisionInputs, p: dict) -> dict | None:
    return None


RULES: dict[str, RuleSpec] = {
    spec.code: spec
    for spec in [
        RuleSpec(
            "list.block",
            "blocked",
            "Block lists (payer, terminal, merchant)",
            {"outcome": "decline"},
            _block_list,
        ),
        RuleSpec(
            "amount.single_limit",
            "amount_over_single_limit",
            "Single payment above a limit",
            {"outcome": "hold", "max_amount": 5_000_000},
            _single_limit,
        ),
        RuleSpec(
            "amount.kyc_class_limit",
            "kyc_limit",
            "Cumulative limits of the payer's KYC class",
            {
                "outcome": "decline",
                "class_i_lifetime": 100_000,
                "class_ii_year": 10_000_000,
                "class_iii_year": 20_000_000,
                "class_i_day": 100_000,
                "class_ii_day": 2_000_000,
                "class_iii_day": 5_000_000,
            },
            _kyc_class_limit,
        ),
        RuleSpec(
            "amount.password_free_daily",
            "password_free_limit",
            "Password-free payments above the daily amount",
            {"outcome": "step_up", "daily_limit": 100_000},
            _password_free_daily,
        ),
        RuleSpec(
            "amount.unusual_payer",
            "amount_unusual_for_payer",
            "Far above the payer's usual amount",
            {"score": 40, "min_history": 5, "multiplier": 10, "min_amount": 50_000},
            _unusual_payer,
        ),
        RuleSpec(
            "amount.unusual_merchant",
            "amount_unusual_for_merchant",
            "Far above the merchant's usual amount",
            {"score": 30, "min_history": 20, "multiplier": 20, "min_amount": 100_000},
            _unusual_merchant,
        ),
        RuleSpec(
            "velocity.payer",
            "velocity_payer",
            "Payments per payer in a sliding window",
            {"outcome": "hold", "window_s": 60, "max_count": 5},
            _velocity("payer", include_this=True),
            counter="payer",
        ),
        RuleSpec(
            "velocity.terminal",
            "velocity_terminal",
            "Payments per terminal in a sliding window",
            {"outcome": "hold", "window_s": 60, "max_count": 30},
            _velocity("terminal", include_this=True),
            counter="terminal",
        ),
        RuleSpec(
            "velocity.merchant",
            "velocity_merchant",
            "Payments per merchant in a sliding window",
            {"score": 30, "window_s": 60, "max_count": 300},
            _velocity("merchant", include_this=True),
            counter="merchant",
        ),
        RuleSpec(
            "velocity.declines",
            "repeated_declines",
            "Repeated declines of a payer",
            {"outcome": "decline", "window_s": 600, "max_count": 2},
            _velocity("declines", include_this=False),
            counter="declines",
        ),
        RuleSpec(
            "velocity.wrong_password",
            "repeated_wrong_password",
            "Repeated wrong payment passwords",
            {"outcome": "decline", "window_s": 900, "max_count": 2},
            _velocity("wrong_passwords", include_this=False),
            counter="wrong_passwords",
        ),
        RuleSpec(
            "time.outside_hours",
            "outside_business_hours",
            "Outside the shop's business hours",
            {"score": 30},
            _outside_hours,
        ),
        RuleSpec(
            "time.night_large",
            "large_amount_at_night",
            "Large amount at night",
            {
                "outcome": "step_up",
                "night_starts": "23:00",
                "night_ends": "06:00",
                "min_amount": 500_000,
            },
            _night_large,
        ),
        RuleSpec(
            "location.terminal_moved",
            "terminal_outside_shop",
            "Terminal outside its shop's radius",
            {
                "outcome": "hold",
                "default_radius_m": 200,
                "tolerance_m": 100,
                "missing_location_score": 0,
            },
            _terminal_moved,
        ),
        RuleSpec(
            "location.impossible_travel",
            "impossible_travel",
            "Impossible travel between a payer's payments",
            {"outcome": "hold", "max_speed_kmh": 900, "min_distance_m": 50_000},
            _impossible_travel,
        ),
        # Not a per-payment check: its parameters drive the circuit breaker
        # that risk_record_payment evaluates (an alert, never a block).
        RuleSpec(
            "breaker.merchant",
            "circuit_breaker",
            "Circuit breaker: share of held/declined payments per merchant",
            {"window_s": 900, "min_payments": 20, "max_share_pct": 50},
            _never,
            counter="merchant_all",
        ),
    ]
}

# Score thresholds: a configuration entry like a rule (per category, per merchant).
THRESHOLD_DEFAULTS = {"step_up": 40, "hold": 70, "decline": 100}
RULE_CODES = [*RULES, SCORE_THRESHOLDS]


def rule_defaults(code: str) -> dict[str, Any]:
    if code == SCORE_THRESHOLDS:
        return dict(THRESHOLD_DEFAULTS)
    return dict(RULES[code].defaults)


def rule_title(code: str) -> str:
    return "Score thresholds" if code == SCORE_THRESHOLDS else RULES[code].title

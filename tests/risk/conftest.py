"""Risk test helpers.

Per-rule tests talk to a `pay` driver: `pay(ctx)` decides one payment and,
like the payment service, tells risk its result. Today the driver calls the
engine (risk_decide + risk_record_payment); once the POS payment API exists,
an API-backed driver with the same signature can be added to the `pay`
fixture's params, and every per-rule test runs through it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time

import pytest

from apps.risk.engine import (
    PaymentContext,
    PaymentOutcome,
    RiskDecision,
    risk_decide,
    risk_record_payment,
)
from apps.risk.models import Outcome

BEIJING = (39.908700, 116.397500)
SHANGHAI = (31.230400, 121.473700)
# 12:00 in Asia/Shanghai: inside the default shop hours, not night.
NOON = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)

_FINAL = {
    Outcome.APPROVE: PaymentOutcome.APPROVED,
    Outcome.HOLD: PaymentOutcome.HELD,
    Outcome.DECLINE: PaymentOutcome.DECLINED,
}


def make_ctx(merchant, **overrides) -> PaymentContext:
    fields = {
        "payer_id": 1001,
        "payer_account_class": "III",
        "merchant_id": merchant.pk,
        "merchant_mcc": merchant.mcc,
        "terminal_id": 501,
        "shop_latitude": BEIJING[0],
        "shop_longitude": BEIJING[1],
        "shop_radius_m": 200,
        "shop_opens_at": time(8, 0),
        "shop_closes_at": time(22, 0),
        "amount": 10_000,
        "currency": "CNY",
        "latitude": BEIJING[0],
        "longitude": BEIJING[1],
        "occurred_at": NOON,
        # Most rule tests isolate one rule; the password-free rule's tests turn this off.
        "password_verified": True,
    }
    fields.update(overrides)
    return PaymentContext(**fields)


@dataclass
class Paid:
    decision: RiskDecision
    outcome: str
    reasons: list[str]


class EngineDriver:
    """Decides through the engine and records the result the way the payment
    service will: approved / held / declined; a step-up is left pending."""

    def __init__(self, capture) -> None:
        self.capture = capture

    def __call__(self, ctx: PaymentContext, *, final: str | None = None) -> Paid:
        with self.capture(execute=True):
            decision = risk_decide(ctx=ctx)
            result = final or _FINAL.get(decision.outcome)
            if result is not None:
                risk_record_payment(ctx=ctx, decision=decision, outcome=result)
        return Paid(decision=decision, outcome=decision.outcome, reasons=decision.reasons)


@pytest.fixture(autouse=True)
def _fresh_risk_process_state():
    # A test's database changes roll back without signals: drop this
    # process's cached rule configuration and reporting throttles.
    import apps.risk.config as config
    import apps.risk.engine as engine

    config._snapshot = None
    engine._last_down_report = 0.0
    yield
    config._snapshot = None


@pytest.fixture
def pay(db, django_capture_on_commit_callbacks):
    return EngineDriver(django_capture_on_commit_callbacks)


@pytest.fixture
def ctx(merchant):
    def build(**overrides) -> PaymentContext:
        return make_ctx(merchant, **overrides)

    return build


__all__ = ["BEIJING", "NOON", "SHANGHAI", "make_ctx", "replace"]

"""Engine-level properties that need no terminal: a stored decision replays
to the same outcome, and a decision needs an aware time. (Every rule's
evidence goes through the real payment API: tests/risk/test_rules.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from apps.risk.config import config_snapshot
from apps.risk.context import DecisionInputs, PaymentContext
from apps.risk.decision import evaluate
from apps.risk.models import RiskDecisionRecord
from tests.risk.conftest import NOON

pytestmark = pytest.mark.django_db


def test_a_stored_decision_replays_to_the_same_outcome(pay, ctx):
    for i in range(5):
        pay(ctx(occurred_at=NOON + timedelta(seconds=i)))
    paid = pay(ctx(occurred_at=NOON + timedelta(seconds=9)))
    record = RiskDecisionRecord.objects.get(public_id=paid.decision.public_id)
    again = evaluate(
        ctx=PaymentContext.from_json(record.context),
        inputs=DecisionInputs.from_json(record.inputs),
        rules=config_snapshot().effective(record.context["merchant_mcc"], record.merchant_id),
    )
    assert again.outcome == record.outcome == "hold"
    assert again.reasons == record.reasons == ["velocity_payer"]


def test_an_unverified_payer_is_declined_by_the_engine_too(pay, ctx):
    # Unreachable through the API (the payment code is refused first): the
    # engine's own guard, should another caller ever ask risk directly.
    paid = pay(ctx(payer_account_class="none"))
    assert paid.outcome == "decline"
    assert paid.reasons == ["kyc_unverified"]


def test_a_decision_needs_an_aware_time():
    with pytest.raises(ValueError, match="aware"):
        PaymentContext(
            payer_id=1,
            payer_account_class="III",
            merchant_id=1,
            merchant_mcc="",
            terminal_id=None,
            shop_latitude=None,
            shop_longitude=None,
            shop_radius_m=None,
            shop_opens_at=None,
            shop_closes_at=None,
            amount=1,
            currency="CNY",
            latitude=None,
            longitude=None,
            occurred_at=datetime(2026, 1, 1),
        )

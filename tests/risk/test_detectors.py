"""Async detectors (run after commit over risk's own payment records) and
the rule backtest."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from apps.risk.detectors import detect_refund_ratio, risk_record_refund
from apps.risk.models import Alert, RiskCase
from apps.risk.rules import LOCAL_TZ
from tests.accounts.factories import MerchantFactory
from tests.risk.conftest import NOON, local

DAY = NOON.astimezone(LOCAL_TZ).date().isoformat()

pytestmark = pytest.mark.django_db


def test_split_payments_just_under_the_password_free_limit_are_found(pay, ctx):
    for i in range(3):
        pay(ctx(amount=95_000, occurred_at=NOON - timedelta(days=i + 1), password_verified=False))
    assert not Alert.objects.filter(kind="split_payments").exists()  # days apart: not a split
    for i in range(3):
        pay(
            ctx(
                payer_id=1002,
                amount=92_000 + i,
                occurred_at=NOON + timedelta(minutes=i),
                password_verified=True,
            )
        )
    alert = Alert.objects.get(kind="split_payments")
    assert alert.detail["count"] == 3
    assert RiskCase.objects.filter(kind=RiskCase.Kind.DETECTOR, payer_id=1002).count() == 1


def test_round_amounts_at_night_are_found(pay, ctx, compliance):
    from apps.risk.services import risk_rule_config_set

    risk_rule_config_set(rule_code="time.night_large", mode="disabled", actor=compliance)
    night = local(2)
    for i in range(2):
        pay(ctx(amount=20_000, occurred_at=night + timedelta(minutes=i)))
    assert not Alert.objects.filter(kind="round_amounts_at_night").exists()
    pay(ctx(amount=20_001, occurred_at=night + timedelta(minutes=3)))
    assert not Alert.objects.filter(kind="round_amounts_at_night").exists()
    pay(ctx(amount=30_000, occurred_at=night + timedelta(minutes=4)))
    assert Alert.objects.get(kind="round_amounts_at_night").detail["count"] == 3


def test_one_payer_at_many_merchants_within_minutes_is_found(pay, merchant):
    from tests.risk.conftest import make_ctx

    merchants = [merchant, *MerchantFactory.create_batch(3)]
    for i, m in enumerate(merchants[:3]):
        pay(make_ctx(m, terminal_id=900 + i, occurred_at=NOON + timedelta(minutes=i)))
    assert not Alert.objects.filter(kind="payer_many_merchants").exists()
    pay(make_ctx(merchants[3], terminal_id=903, occurred_at=NOON + timedelta(minutes=4)))
    assert Alert.objects.get(kind="payer_many_merchants").detail["merchants"] == 4


def test_a_terminal_with_unusual_volume_is_found(pay, ctx, compliance):
    from apps.risk.services import risk_rule_config_set

    for code in ("velocity.terminal", "velocity.merchant"):
        risk_rule_config_set(rule_code=code, mode="disabled", actor=compliance)
    for i in range(20):
        pay(ctx(payer_id=8000 + i, occurred_at=NOON + timedelta(minutes=i)))
    assert Alert.objects.get(kind="terminal_unusual_volume").detail["last_hour"] == 20


def test_a_merchants_refund_ratio_spike_is_found(pay, ctx, merchant):
    for i in range(5):
        pay(ctx(payer_id=8100 + i, amount=10_000, occurred_at=NOON + timedelta(minutes=i)))
    for i in range(4):
        risk_record_refund(
            merchant_id=merchant.pk, amount=10_000, occurred_at=NOON + timedelta(minutes=10 + i)
        )
    assert (
        detect_refund_ratio(now=NOON + timedelta(hours=1)) == []
    )  # four refunds: under the minimum count
    risk_record_refund(
        merchant_id=merchant.pk, amount=5_000, occurred_at=NOON + timedelta(minutes=20)
    )
    found = detect_refund_ratio(now=NOON + timedelta(hours=1))
    assert [f["kind"] for f in found] == ["refund_ratio_spike"]
    assert Alert.objects.get(kind="refund_ratio_spike").detail["ratio_pct"] == 90.0


def test_the_backtest_shows_how_a_proposed_rule_would_change_outcomes(pay, ctx, tmp_path):
    pay(ctx(amount=10_000))
    pay(ctx(payer_id=1002, amount=400_000))
    proposal = tmp_path / "proposal.json"
    proposal.write_text(json.dumps({"amount.single_limit": {"params": {"max_amount": 300_000}}}))
    out = StringIO()
    call_command(
        "risk_backtest",
        "--from",
        DAY,
        "--to",
        DAY,
        "--rules",
        str(proposal),
        stdout=out,
    )
    text = out.getvalue()
    assert "2 decisions" in text
    assert "1 of 2 outcomes would differ" in text
    assert "approve ['amount_over_single_limit'] " not in text
    assert "-> hold ['amount_over_single_limit']" in text
    out = StringIO()
    call_command("risk_backtest", "--from", DAY, "--to", DAY, stdout=out)
    assert "0 of 2 outcomes would differ" in out.getvalue()


def test_the_sweep_looks_at_each_decided_payment_once(pay, ctx):
    """Each decided payment is marked for the detectors with its outcome (in
    its own transaction); the scheduled sweep looks at it once and clears
    the mark. A payment waiting for its password is not decided yet."""
    from apps.risk.detectors import risk_payment_detectors_sweep
    from apps.risk.models import RiskDecisionRecord
    from apps.risk.tasks import risk_payment_detectors

    for i in range(3):
        pay(ctx(amount=1_000 + i, occurred_at=NOON + timedelta(minutes=i)), final="approved")
    # the driver swept after each payment, as the schedule would
    assert not RiskDecisionRecord.objects.filter(detectors_pending=True).exists()
    RiskDecisionRecord.objects.update(detectors_pending=True)
    assert risk_payment_detectors_sweep(batch_size=2) == 3  # in batches
    assert risk_payment_detectors.delay().get() == 0
    assert not RiskDecisionRecord.objects.filter(detectors_pending=True).exists()

"""The engine's state: running totals under concurrency, the configuration
cache across processes, counters when Redis fails while recording, the
context builder the payment service uses, the ledger-sum check."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection

import apps.risk.config as risk_config
from apps.audit.models import SecurityEvent
from apps.risk.engine import PaymentOutcome, payment_context_build, risk_decide, risk_record_payment
from apps.risk.models import Alert, PayerRiskState, RiskCase, RuleConfig
from apps.risk.services import risk_case_open, risk_rule_config_set
from tests.accounts.factories import PayerFactory, ShopFactory
from tests.risk.conftest import NOON, make_ctx


@pytest.mark.django_db
def test_another_processs_rule_change_is_picked_up_through_the_generation(merchant, compliance):
    risk_rule_config_set(
        rule_code="amount.single_limit", params={"max_amount": 1_000}, actor=compliance
    )
    snapshot = risk_config.config_snapshot()
    assert (
        snapshot.effective(merchant.mcc, merchant.pk)["amount.single_limit"].params["max_amount"]
        == 1_000
    )
    # another process saved a change: no signal here, only the shared generation moves
    RuleConfig.objects.filter(rule_code="amount.single_limit").update(params={"max_amount": 2_000})
    assert risk_config.config_snapshot() is snapshot  # within the check interval: no query
    cache.set(risk_config.GENERATION_KEY, uuid.uuid4().hex)
    risk_config._checked_at -= risk_config.CHECK_INTERVAL_S
    fresh = risk_config.config_snapshot()
    assert (
        fresh.effective(merchant.mcc, merchant.pk)["amount.single_limit"].params["max_amount"]
        == 2_000
    )


@pytest.mark.django_db
def test_the_context_builder_reads_the_payment_services_objects(merchant):
    from types import SimpleNamespace

    payer = PayerFactory(account_class="I")
    shop = ShopFactory(merchant=merchant)
    terminal = SimpleNamespace(pk=42, shop=shop, bind_radius_m=150)  # terminals.Terminal's fields
    ctx = payment_context_build(
        payer=payer,
        merchant=merchant,
        terminal=terminal,
        amount=1_234,
        latitude="39.9088",
        longitude="116.3976",
    )
    assert (ctx.payer_id, ctx.payer_account_class, ctx.terminal_id, ctx.shop_radius_m) == (
        payer.pk,
        "I",
        42,
        150,
    )
    assert ctx.shop_latitude == pytest.approx(39.9087)
    assert ctx.latitude == 39.9088
    assert ctx.occurred_at.tzinfo is not None
    assert risk_decide(ctx=ctx).outcome == "approve"


@pytest.mark.django_db
def test_the_hold_case_of_a_payment_opens_once(merchant):
    payment = uuid.uuid4()
    kw = {
        "kind": RiskCase.Kind.PAYMENT_HOLD,
        "title": "t",
        "merchant": merchant,
        "payment_public_id": payment,
        "hold_entry_public_id": uuid.uuid4(),
        "amount": 1,
    }
    risk_case_open(**kw)
    with pytest.raises(IntegrityError):
        risk_case_open(**kw)


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_failing_while_recording_is_a_security_event(
    merchant, settings, django_capture_on_commit_callbacks
):
    ctx = make_ctx(merchant)
    decision = risk_decide(ctx=ctx)
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the connection goes away before the commit
    with django_capture_on_commit_callbacks(execute=True):
        risk_record_payment(ctx=ctx, decision=decision, outcome=PaymentOutcome.APPROVED)
    assert SecurityEvent.objects.filter(kind="risk_counters_unavailable").exists()
    assert Alert.objects.filter(kind="risk_counters_unavailable").exists()
    # the payer's totals are in the database and were kept
    assert PayerRiskState.objects.get(payer_id=ctx.payer_id).day_total == ctx.amount


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_of_one_payer_lose_no_amount(merchant):
    ctxs = [
        make_ctx(merchant, amount=1_000 + i, occurred_at=NOON + timedelta(seconds=i))
        for i in range(8)
    ]
    decisions = [risk_decide(ctx=c) for c in ctxs]
    barrier = threading.Barrier(len(ctxs))
    errors = []

    def record(ctx, decision):
        try:
            barrier.wait()
            risk_record_payment(ctx=ctx, decision=decision, outcome=PaymentOutcome.APPROVED)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=record, args=pair) for pair in zip(ctxs, decisions, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = PayerRiskState.objects.get(payer_id=ctxs[0].payer_id)
    total = sum(c.amount for c in ctxs)
    assert (state.day_total, state.year_total, state.lifetime_total, state.payments_count) == (
        total,
        total,
        total,
        8,
    )
    assert state.last_at == ctxs[-1].occurred_at


@pytest.mark.django_db
def test_a_ledger_that_does_not_sum_to_zero_is_alerted():
    from apps.core.money import Money
    from apps.transactions.models import JournalEntry, LedgerAccount, Posting
    from apps.transactions.monitoring import ledger_balance_monitor_run
    from tests.transactions.factories import funded_payer

    payer = funded_payer(10_000)
    wallet = LedgerAccount.objects.get(payer=payer)
    entry = JournalEntry.objects.first()
    # a stray posting written behind the ledger service's back (no counterpart)
    Posting.objects.create(entry=entry, account=wallet, amount=Money(500).amount)
    run = ledger_balance_monitor_run()
    assert run.stats["ledger_sums"] == 1
    assert Alert.objects.get(kind="ledger_not_zero").detail["sum"] == 500
    wallet.refresh_from_db()
    assert wallet.frozen  # its cached balance no longer matches its postings either


@pytest.mark.django_db
def test_a_merchants_usual_amounts_are_the_sum_of_its_slots(merchant):
    """Approved payments add to one of several slot rows (so a busy
    merchant's payments do not queue on one row); the engine reads the sums."""
    from apps.risk.context import DecisionInputs
    from apps.risk.engine import _read_state
    from apps.risk.models import MERCHANT_STATE_SLOTS, MerchantRiskState

    MerchantRiskState.objects.create(
        merchant_id=merchant.pk, slot=0, payments_count=2, payments_sum=300
    )
    MerchantRiskState.objects.create(
        merchant_id=merchant.pk, slot=MERCHANT_STATE_SLOTS - 1, payments_count=3, payments_sum=700
    )
    MerchantRiskState.objects.create(
        merchant_id=merchant.pk + 1, slot=0, payments_count=50, payments_sum=1
    )
    ctx = payment_context_build(payer=PayerFactory(), merchant=merchant, terminal=None, amount=100)
    inputs = DecisionInputs()
    _read_state(ctx, inputs)
    assert (inputs.merchant_payments_count, inputs.merchant_payments_sum) == (5, 1000)

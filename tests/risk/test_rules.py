"""One test per rule at the engine level: a payment that trips the rule gets
the expected outcome and reason; one just under the threshold does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.audit.models import SecurityEvent
from apps.risk.decision import DecisionInputs, PaymentContext, evaluate
from apps.risk.engine import (
    PaymentOutcome,
    risk_password_failure_record,
    risk_payer_password_free_limit_set,
)
from apps.risk.models import Alert, PayerRiskState, RiskDecisionRecord
from apps.risk.services import risk_list_entry_add, risk_rule_config_set
from tests.risk.conftest import BEIJING, NOON, SHANGHAI

pytestmark = pytest.mark.django_db


def _set(rule: str, actor, **params):
    return risk_rule_config_set(rule_code=rule, params=params, actor=actor, reason="test")


def test_a_plain_payment_is_approved_with_no_reasons(pay, ctx):
    paid = pay(ctx())
    assert paid.outcome == "approve"
    assert paid.reasons == []
    assert paid.decision.score == 0


# --- amount ------------------------------------------------------------------


def test_a_payment_above_the_single_limit_is_held(pay, ctx, compliance):
    _set("amount.single_limit", compliance, max_amount=50_000)
    paid = pay(ctx(amount=50_001))
    assert paid.outcome == "hold"
    assert "amount_over_single_limit" in paid.reasons


def test_a_payment_at_the_single_limit_passes(pay, ctx, compliance):
    _set("amount.single_limit", compliance, max_amount=50_000)
    paid = pay(ctx(amount=50_000))
    assert paid.outcome == "approve"
    assert "amount_over_single_limit" not in paid.reasons


def test_an_unverified_payer_cannot_pay(pay, ctx):
    paid = pay(ctx(payer_account_class="none"))
    assert paid.outcome == "decline"
    assert paid.reasons == ["kyc_unverified"]


def test_class_i_is_limited_to_1000_yuan_since_opening(pay, ctx):
    pay(ctx(payer_account_class="I", amount=60_000))
    next_day = NOON + timedelta(days=1)
    over = pay(ctx(payer_account_class="I", amount=40_001, occurred_at=next_day))
    assert over.outcome == "decline"
    assert "kyc_lifetime_limit" in over.reasons
    under = pay(ctx(payer_account_class="I", amount=40_000, occurred_at=next_day))
    assert under.outcome == "approve"


def test_class_i_daily_cap_applies_within_one_day(pay, ctx):
    pay(ctx(payer_account_class="I", amount=60_000))
    over = pay(ctx(payer_account_class="I", amount=40_001, occurred_at=NOON + timedelta(minutes=5)))
    assert over.outcome == "decline"
    assert over.reasons == ["kyc_day_limit"]


@pytest.mark.parametrize(("account_class", "year_limit"), [("II", 10_000_000), ("III", 20_000_000)])
def test_class_ii_and_iii_yearly_limits(pay, ctx, account_class, year_limit):
    PayerRiskState.objects.create(payer_id=1001, year=2026, year_total=year_limit - 10_000)
    over = pay(ctx(payer_account_class=account_class, amount=10_001))
    assert over.outcome == "decline"
    assert over.reasons == ["kyc_year_limit"]
    under = pay(ctx(payer_account_class=account_class, amount=10_000, payer_id=1001))
    assert under.outcome == "approve"


def test_the_yearly_total_starts_again_in_a_new_year(pay, ctx):
    PayerRiskState.objects.create(payer_id=1001, year=2025, year_total=10_000_000)
    assert pay(ctx(payer_account_class="II", amount=10_000)).outcome == "approve"


def test_password_free_payments_above_the_daily_amount_need_the_password(pay, ctx):
    pay(ctx(password_verified=False, amount=60_000))
    over = pay(ctx(password_verified=False, amount=40_001, occurred_at=NOON + timedelta(minutes=1)))
    assert over.outcome == "step_up"
    assert over.reasons == ["password_free_limit"]
    under = pay(
        ctx(password_verified=False, amount=40_000, occurred_at=NOON + timedelta(minutes=2))
    )
    assert under.outcome == "approve"


def test_the_step_up_retry_with_the_password_is_approved(pay, ctx):
    assert pay(ctx(password_verified=False, amount=100_001)).outcome == "step_up"
    assert pay(ctx(password_verified=True, amount=100_001)).outcome == "approve"


def test_a_payer_may_lower_the_password_free_amount(pay, ctx):
    risk_payer_password_free_limit_set(payer_id=1001, limit=20_000)
    assert pay(ctx(password_verified=False, amount=20_001)).outcome == "step_up"
    assert pay(ctx(password_verified=False, amount=20_000)).outcome == "approve"


def test_a_payer_cannot_raise_the_password_free_amount(pay, ctx):
    risk_payer_password_free_limit_set(payer_id=1001, limit=10_000_000)
    assert pay(ctx(password_verified=False, amount=100_001)).outcome == "step_up"


def _history(pay, ctx, n: int, amount: int, **kw):
    for i in range(n):
        pay(ctx(amount=amount, occurred_at=NOON - timedelta(hours=2, minutes=i), **kw))


def test_an_amount_far_above_the_payers_usual_scores(pay, ctx):
    _history(pay, ctx, 5, 10_000)
    paid = pay(ctx(amount=100_001, password_verified=False))
    assert "amount_unusual_for_payer" in paid.reasons
    assert paid.decision.score == 40
    assert paid.outcome == "step_up"


def test_an_amount_at_ten_times_the_payers_usual_does_not(pay, ctx):
    _history(pay, ctx, 5, 10_000)
    paid = pay(ctx(amount=100_000))
    assert "amount_unusual_for_payer" not in paid.reasons


def test_an_amount_far_above_the_merchants_usual_scores(pay, ctx):
    for i in range(20):
        pay(ctx(payer_id=2000 + i, amount=5_000, occurred_at=NOON - timedelta(hours=3, minutes=i)))
    paid = pay(ctx(payer_id=3000, amount=100_001))
    assert "amount_unusual_for_merchant" in paid.reasons
    assert paid.decision.score == 30
    below = pay(ctx(payer_id=3001, amount=100_000))
    assert "amount_unusual_for_merchant" not in below.reasons


# --- velocity ----------------------------------------------------------------


def test_the_sixth_payment_of_a_payer_within_a_minute_is_held(pay, ctx):
    for i in range(5):
        assert pay(ctx(occurred_at=NOON + timedelta(seconds=i))).outcome == "approve"
    paid = pay(ctx(occurred_at=NOON + timedelta(seconds=10)))
    assert paid.outcome == "hold"
    assert "velocity_payer" in paid.reasons


def test_payments_outside_the_window_do_not_count(pay, ctx):
    for i in range(5):
        pay(ctx(occurred_at=NOON + timedelta(seconds=i)))
    paid = pay(ctx(occurred_at=NOON + timedelta(seconds=90)))
    assert "velocity_payer" not in paid.reasons


def test_terminal_velocity_with_a_per_merchant_override(pay, ctx, merchant, compliance):
    risk_rule_config_set(
        rule_code="velocity.terminal",
        scope="merchant",
        merchant=merchant,
        params={"max_count": 3},
        actor=compliance,
        reason="small shop",
    )
    for i in range(3):
        assert (
            pay(ctx(payer_id=4000 + i, occurred_at=NOON + timedelta(seconds=i))).outcome
            == "approve"
        )
    paid = pay(ctx(payer_id=4010, occurred_at=NOON + timedelta(seconds=5)))
    assert paid.outcome == "hold"
    assert "velocity_terminal" in paid.reasons
    other_terminal = pay(
        ctx(payer_id=4011, terminal_id=502, occurred_at=NOON + timedelta(seconds=6))
    )
    assert "velocity_terminal" not in other_terminal.reasons


def test_merchant_velocity_per_merchant_category(pay, ctx, merchant, compliance):
    risk_rule_config_set(
        rule_code="velocity.merchant",
        scope="mcc",
        mcc=merchant.mcc,
        params={"max_count": 3, "score": 70},
        actor=compliance,
        reason="category",
    )
    for i in range(3):
        pay(ctx(payer_id=5000 + i, terminal_id=600 + i, occurred_at=NOON + timedelta(seconds=i)))
    paid = pay(ctx(payer_id=5010, terminal_id=610, occurred_at=NOON + timedelta(seconds=5)))
    assert "velocity_merchant" in paid.reasons
    assert paid.outcome == "hold"  # score 70 reaches the hold threshold


def test_repeated_declines_decline_the_next_payment(pay, ctx):
    for i in range(2):
        pay(ctx(occurred_at=NOON + timedelta(seconds=i)), final=PaymentOutcome.DECLINED)
    under = pay(ctx(occurred_at=NOON + timedelta(seconds=5)), final=PaymentOutcome.DECLINED)
    assert "repeated_declines" not in under.reasons
    over = pay(ctx(occurred_at=NOON + timedelta(seconds=10)))
    assert over.outcome == "decline"
    assert "repeated_declines" in over.reasons


def test_repeated_wrong_payment_passwords_decline(pay, ctx):
    for i in range(2):
        risk_password_failure_record(payer_id=1001, occurred_at=NOON + timedelta(seconds=i))
    assert (
        "repeated_wrong_password" not in pay(ctx(occurred_at=NOON + timedelta(seconds=5))).reasons
    )
    risk_password_failure_record(payer_id=1001, occurred_at=NOON + timedelta(seconds=6))
    paid = pay(ctx(occurred_at=NOON + timedelta(seconds=7)))
    assert paid.outcome == "decline"
    assert "repeated_wrong_password" in paid.reasons


# --- time --------------------------------------------------------------------


def test_a_payment_outside_business_hours_scores(pay, ctx):
    # 22:30 in Shanghai, the shop closes at 22:00
    paid = pay(ctx(occurred_at=datetime(2026, 11, 25, 14, 30, tzinfo=UTC)))
    assert paid.reasons == ["outside_business_hours"]
    assert paid.decision.score == 30
    inside = pay(ctx(occurred_at=datetime(2026, 11, 25, 13, 59, tzinfo=UTC)))
    assert inside.reasons == []


def test_business_hours_past_midnight(pay, ctx):
    from datetime import time

    at_one = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 01:00 local
    paid = pay(ctx(occurred_at=at_one, shop_opens_at=time(18, 0), shop_closes_at=time(2, 0)))
    assert "outside_business_hours" not in paid.reasons


def test_a_large_amount_at_night_needs_the_password(pay, ctx, compliance):
    _set("amount.password_free_daily", compliance, daily_limit=10_000_000)
    _set("amount.single_limit", compliance, max_amount=10_000_000)
    two_am = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    paid = pay(ctx(amount=500_000, occurred_at=two_am, password_verified=False))
    assert paid.outcome == "step_up"
    assert "large_amount_at_night" in paid.reasons
    under = pay(ctx(payer_id=1002, amount=499_999, occurred_at=two_am, password_verified=False))
    assert "large_amount_at_night" not in under.reasons


# --- location ----------------------------------------------------------------


def _offset_north(metres: float) -> float:
    return BEIJING[0] + metres / 111_195


def test_a_terminal_outside_its_shop_radius_is_held(pay, ctx):
    paid = pay(ctx(latitude=_offset_north(310)))
    assert paid.outcome == "hold"
    assert paid.reasons == ["terminal_outside_shop"]


def test_a_terminal_inside_radius_plus_tolerance_passes(pay, ctx):
    paid = pay(ctx(latitude=_offset_north(290)))
    assert paid.outcome == "approve"


def _in(city, **kw):
    return {
        "latitude": city[0],
        "longitude": city[1],
        "shop_latitude": city[0],
        "shop_longitude": city[1],
        **kw,
    }


def test_beijing_then_shanghai_ten_minutes_later_is_impossible_travel(pay, ctx):
    pay(ctx(**_in(BEIJING)))
    paid = pay(ctx(terminal_id=777, **_in(SHANGHAI, occurred_at=NOON + timedelta(minutes=10))))
    assert paid.outcome == "hold"
    assert paid.reasons == ["impossible_travel"]
    hit = paid.decision.hits[0]
    assert hit.values["speed_kmh"] > 6000
    assert 1_000_000 < hit.values["distance_m"] < 1_100_000


def test_beijing_then_shanghai_a_day_later_is_fine(pay, ctx):
    pay(ctx(**_in(BEIJING)))
    paid = pay(ctx(terminal_id=777, **_in(SHANGHAI, occurred_at=NOON + timedelta(days=1))))
    assert "impossible_travel" not in paid.reasons


def test_far_apart_at_the_same_instant_is_caught_without_dividing_by_zero(pay, ctx):
    pay(ctx(**_in(BEIJING)))
    paid = pay(ctx(terminal_id=777, **_in(SHANGHAI, occurred_at=NOON)))
    assert paid.reasons == ["impossible_travel"]
    assert paid.decision.hits[0].values["speed_kmh"] is None


def test_a_payment_reported_earlier_than_the_last_one_is_guarded(pay, ctx):
    pay(ctx(**_in(BEIJING)))
    paid = pay(ctx(terminal_id=777, **_in(SHANGHAI, occurred_at=NOON - timedelta(minutes=3))))
    assert paid.reasons == ["impossible_travel"]
    assert paid.decision.hits[0].values["elapsed_s"] < 0
    # the earlier payment does not move the payer's last known place
    assert PayerRiskState.objects.get(payer_id=1001).last_at == NOON


def test_the_same_place_at_the_same_instant_is_not_travel(pay, ctx):
    pay(ctx())
    assert "impossible_travel" not in pay(ctx()).reasons


# --- lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject_type", "field"),
    [("payer", "payer_id"), ("terminal", "terminal_id"), ("merchant", None)],
)
def test_block_lists_decline(pay, ctx, merchant, compliance, subject_type, field):
    subject_id = merchant.pk if field is None else {"payer_id": 1001, "terminal_id": 501}[field]
    risk_list_entry_add(
        kind="block",
        subject_type=subject_type,
        subject_id=subject_id,
        reason="fraud",
        actor=compliance,
    )
    paid = pay(ctx())
    assert paid.outcome == "decline"
    assert paid.reasons == ["blocked"]


def test_an_expired_block_entry_no_longer_applies(pay, ctx, compliance):
    risk_list_entry_add(
        kind="block",
        subject_type="payer",
        subject_id=1001,
        reason="fraud",
        actor=compliance,
        expires_at=NOON - timedelta(seconds=1),
    )
    assert pay(ctx()).outcome == "approve"


def test_an_allow_entry_skips_the_rules_it_names(pay, ctx, compliance):
    risk_list_entry_add(
        kind="allow",
        subject_type="terminal",
        subject_id=501,
        reason="mobile stall",
        actor=compliance,
        skip_rules=["location.terminal_moved"],
    )
    paid = pay(ctx(latitude=_offset_north(5_000)))
    assert paid.outcome == "approve"
    assert "location.terminal_moved" in paid.decision.skipped


def test_an_allow_entry_does_not_skip_the_block_list(pay, ctx, compliance):
    risk_list_entry_add(
        kind="allow",
        subject_type="payer",
        subject_id=1001,
        reason="vip",
        actor=compliance,
        skip_rules=["*"],
    )
    risk_list_entry_add(
        kind="block", subject_type="payer", subject_id=1001, reason="fraud", actor=compliance
    )
    assert pay(ctx()).outcome == "decline"


# --- circuit breaker, shadow mode, configuration -------------------------------


def test_the_circuit_breaker_alerts_when_most_of_a_merchants_payments_are_held(
    pay, ctx, compliance
):
    _set("breaker.merchant", compliance, min_payments=4, max_share_pct=50)
    pay(ctx(payer_id=7000))
    for i in range(3):
        paid = pay(
            ctx(
                payer_id=7001 + i,
                latitude=_offset_north(1_000),
                occurred_at=NOON + timedelta(seconds=i + 1),
            )
        )
        assert paid.outcome == "hold"
    alert = Alert.objects.get(kind="circuit_breaker")
    assert alert.severity == "critical"
    assert alert.detail["negative"] == 3


def test_the_circuit_breaker_stays_quiet_at_half_held(pay, ctx, compliance):
    _set("breaker.merchant", compliance, min_payments=4, max_share_pct=50)
    pay(ctx(payer_id=7000))
    pay(ctx(payer_id=7001, occurred_at=NOON + timedelta(seconds=1)))
    for i in range(2):
        pay(
            ctx(
                payer_id=7002 + i,
                latitude=_offset_north(1_000),
                occurred_at=NOON + timedelta(seconds=i + 2),
            )
        )
    assert not Alert.objects.filter(kind="circuit_breaker").exists()


def test_a_shadow_rule_is_recorded_but_changes_nothing(pay, ctx, compliance):
    risk_rule_config_set(
        rule_code="amount.single_limit",
        mode="shadow",
        params={"max_amount": 5_000},
        actor=compliance,
    )
    paid = pay(ctx(amount=5_001))
    assert paid.outcome == "approve"
    assert paid.reasons == []
    assert [h.code for h in paid.decision.shadow_hits] == ["amount.single_limit"]
    stored = RiskDecisionRecord.objects.get(public_id=paid.decision.public_id)
    assert stored.hits[0]["shadow"] is True


def test_a_rule_change_applies_to_the_next_decision_and_its_version_is_recorded(
    pay, ctx, compliance
):
    assert pay(ctx(amount=60_000)).outcome == "approve"
    config = _set("amount.single_limit", compliance, max_amount=50_000)
    paid = pay(ctx(amount=60_000, payer_id=1002))
    assert paid.outcome == "hold"
    assert paid.decision.rule_versions["amount.single_limit"] == f"code+default:v{config.version}"


def test_a_stored_decision_replays_to_the_same_outcome(pay, ctx):
    for i in range(5):
        pay(ctx(occurred_at=NOON + timedelta(seconds=i)))
    paid = pay(ctx(occurred_at=NOON + timedelta(seconds=9)))
    record = RiskDecisionRecord.objects.get(public_id=paid.decision.public_id)
    from apps.risk.config import config_snapshot

    again = evaluate(
        ctx=PaymentContext.from_json(record.context),
        inputs=DecisionInputs.from_json(record.inputs),
        rules=config_snapshot().effective(record.context["merchant_mcc"], record.merchant_id),
    )
    assert again.outcome == record.outcome == "hold"
    assert again.reasons == record.reasons


# --- fail closed ---------------------------------------------------------------


def test_redis_down_velocity_rules_fail_closed(pay, ctx, settings):
    # A real connection to a closed port, not a mock.
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    settings.RISK_REDIS_TIMEOUT_MS = 200
    paid = pay(ctx())
    assert paid.outcome == "hold"
    assert "velocity_unavailable" in paid.reasons
    assert paid.decision.inputs.velocity_available is False
    assert SecurityEvent.objects.filter(
        kind="risk_counters_unavailable", severity="critical"
    ).exists()
    assert Alert.objects.filter(kind="risk_counters_unavailable", severity="critical").exists()


@pytest.mark.redis
def test_with_redis_up_the_same_payment_is_approved(pay, ctx):
    paid = pay(ctx())
    assert paid.outcome == "approve"
    assert paid.decision.inputs.velocity_available is True


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

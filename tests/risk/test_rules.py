"""One test per rule through the real payment API: a terminal activated over
HTTP posts a signed POST /api/v1/terminal/payments (a fresh payment code,
its reported coordinates) to the live server. A payment that trips the rule
gets the expected status and reason in the API's answer, and the stored
decision has the hit; one just under the threshold does not.

Risk's clock is pinned by the `risk_clock` fixture (noon in Shanghai today
unless a test moves it), so "ten minutes later" is a clock move."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from apps.audit.models import SecurityEvent
from apps.core.money import Money
from apps.risk.engine import risk_payer_password_free_limit_set
from apps.risk.models import Alert, MerchantRiskState, PayerRiskState, RiskDecisionRecord
from apps.risk.rules import LOCAL_TZ
from apps.risk.services import risk_list_entry_add, risk_rule_config_set
from apps.terminals.models import Terminal
from apps.transactions.services import payment_code_issue, wallet_top_up
from tests.risk.conftest import BEIJING, NOON, SHANGHAI, local, payer_with
from tests.transactions.pos import PAYMENT_PASSWORD, with_payment_password

pytestmark = pytest.mark.django_db(transaction=True)

YUAN = 100  # fen


def _set(rule: str, actor, **params):
    return risk_rule_config_set(rule_code=rule, params=params, actor=actor, reason="test")


def _north_of_shop(metres: float) -> tuple[float, float]:
    """A point `metres` due north of the `shop` fixture (Shanghai)."""
    return (SHANGHAI[0] + metres / 111_195, SHANGHAI[1])


def test_a_plain_payment_is_approved_with_no_reasons(till):
    paid = till(payer_with(1_000 * YUAN), 100 * YUAN)
    assert paid.status == "completed"
    assert paid.reasons == []
    assert paid.record.outcome == "approve"
    assert paid.record.score == 0
    assert paid.record.payment_outcome == "approved"
    assert paid.record.occurred_at == NOON


# --- amount --------------------------------------------------------------------


def test_a_payment_above_the_single_limit_is_held(till, compliance):
    _set("amount.single_limit", compliance, max_amount=50_000)
    at_limit = till(payer_with(2_000 * YUAN), 50_000)
    assert at_limit.status == "completed"
    assert at_limit.reasons == []
    over = till(payer_with(2_000 * YUAN), 50_001)
    assert over.status == "held"
    assert over.reasons == ["amount_over_single_limit"]
    assert over.hit("amount.single_limit")["values"] == {"amount": 50_001, "max_amount": 50_000}


def test_an_unverified_payer_cannot_pay(pos, operator):
    """The payments layer stops an unverified payer before risk (the code is
    refused), so risk's kyc_unverified decline is defence in depth (its
    reason is covered at the engine level: test_engine_rules.py)."""
    from apps.accounts.models import Payer

    payer = payer_with(100 * YUAN, account_class="II")
    code = payment_code_issue(payer=payer).code  # issued while verified
    Payer.objects.filter(pk=payer.pk).update(account_class=Payer.AccountClass.UNVERIFIED)
    response = pos.post(
        "/api/v1/terminal/payments",
        {"amount": 10 * YUAN, "payment_code": code, "operator_id": str(operator.public_id)},
        idempotency_key="unverified-1",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "payer_not_verified"
    assert not RiskDecisionRecord.objects.exists()


def test_class_i_is_limited_to_1000_yuan_since_opening(till, risk_clock):
    payer = payer_with(2_000 * YUAN, account_class="I")
    assert till(payer, 60_000).status == "completed"
    risk_clock.advance(days=1)  # a new day: the daily cap starts again, the lifetime one not
    over = till(payer, 40_001)
    assert over.status == "declined"
    assert over.reasons == ["kyc_lifetime_limit"]
    assert over.hit("amount.kyc_class_limit")["values"]["total_after"] == 100_001
    under = till(payer, 40_000)
    assert under.status == "completed"


def test_class_i_daily_cap_applies_within_one_day(till, risk_clock):
    payer = payer_with(2_000 * YUAN, account_class="I")
    till(payer, 60_000)
    risk_clock.advance(minutes=5)
    over = till(payer, 40_001)
    assert over.status == "declined"
    assert over.reasons[0] == "kyc_day_limit"
    risk_clock.advance(minutes=5)
    assert "kyc_day_limit" not in till(payer, 40_000).reasons


@pytest.mark.parametrize(("account_class", "year_limit"), [("II", 10_000_000), ("III", 20_000_000)])
def test_class_ii_and_iii_yearly_limits(till, account_class, year_limit):
    payer = payer_with(1_000 * YUAN, account_class=account_class)
    # The payer's running total for this year, as earlier payments left it.
    PayerRiskState.objects.create(
        payer_id=payer.pk, year=NOON.astimezone(LOCAL_TZ).year, year_total=year_limit - 10_000
    )
    over = till(payer, 10_001)
    assert over.status == "declined"
    assert over.reasons == ["kyc_year_limit"]
    under = till(payer, 10_000)
    assert under.status == "completed"
    assert PayerRiskState.objects.get(payer_id=payer.pk).year_total == year_limit


def test_the_yearly_total_starts_again_in_a_new_year(till):
    payer = payer_with(1_000 * YUAN, account_class="II")
    last_year = NOON.astimezone(LOCAL_TZ).year - 1
    PayerRiskState.objects.create(payer_id=payer.pk, year=last_year, year_total=10_000_000)
    assert till(payer, 10_000).status == "completed"


def test_password_free_payments_above_the_daily_amount_need_the_password(till, risk_clock):
    payer = with_payment_password(payer_with(2_000 * YUAN))
    till(payer, 60_000)
    risk_clock.advance(minutes=1)
    over = till(payer, 40_001)
    assert over.status == "awaiting_password"
    assert over.reasons == ["password_free_limit"]
    assert over.body["next_action"] == "confirm_payment_password"
    risk_clock.advance(minutes=1)
    under = till(payer, 40_000)
    assert under.status == "completed"
    # the step-up retry with the password is decided again and approved
    confirmed = till.confirm(over, PAYMENT_PASSWORD)
    assert confirmed.http_status == 200
    assert confirmed.status == "completed"


def test_a_payer_may_lower_the_password_free_amount_but_not_raise_it(till):
    lowered = payer_with(1_000 * YUAN)
    risk_payer_password_free_limit_set(payer_id=lowered.pk, limit=20_000)
    assert till(lowered, 20_001).status == "awaiting_password"
    assert till(lowered, 20_000).status == "completed"
    raised = payer_with(2_000 * YUAN)
    risk_payer_password_free_limit_set(payer_id=raised.pk, limit=10_000_000)
    assert till(raised, 100_001).reasons == ["password_free_limit"]


def _history(till, risk_clock, payer, n: int, amount: int) -> None:
    """n payments two minutes apart (no velocity rule sees them together),
    ending two hours before noon."""
    for i in range(n):
        till(payer, amount, at=NOON - timedelta(hours=2, minutes=2 * (n - i)))
    risk_clock.set(NOON)


def test_an_amount_far_above_the_payers_usual_scores(till, risk_clock, compliance):
    _set("amount.password_free_daily", compliance, daily_limit=10_000_000)
    payer = payer_with(5_000 * YUAN)
    _history(till, risk_clock, payer, 5, 10_000)
    at_ten_times = till(payer, 100_000)
    assert "amount_unusual_for_payer" not in at_ten_times.reasons
    assert at_ten_times.status == "completed"
    risk_clock.advance(minutes=5)
    far = till(payer, 200_001)  # the usual is now 25,000: ten times is 250,000
    assert far.status == "completed"
    again = payer_with(5_000 * YUAN)
    _history(till, risk_clock, again, 5, 10_000)
    over = till(again, 100_001)
    assert over.status == "awaiting_password"  # 40 points reach the step-up threshold
    assert over.reasons == ["amount_unusual_for_payer", "score_threshold"]
    assert over.record.score == 40
    assert over.hit("amount.unusual_payer")["values"]["usual_amount"] == 10_000


def test_an_amount_far_above_the_merchants_usual_scores(till, merchant, compliance):
    _set("amount.password_free_daily", compliance, daily_limit=10_000_000)
    # The merchant's running usual amount, as twenty earlier ¥50 payments
    # left it (what risk_record_payment keeps; the payer's own history is
    # built through the API in the test above).
    MerchantRiskState.objects.create(
        merchant_id=merchant.pk, payments_count=20, payments_sum=20 * 5_000
    )
    # exactly twenty times the usual 5,000: not over it
    at_limit = till(payer_with(2_000 * YUAN), 100_000)
    assert at_limit.reasons == []
    usual = (20 * 5_000 + 100_000) // 21  # what the merchant's usual became
    over = till(payer_with(2_000 * YUAN), 20 * usual + 1)
    assert over.reasons == ["amount_unusual_for_merchant"]
    assert over.record.score == 30  # under the step-up threshold: recorded, approved
    assert over.status == "completed"
    assert over.hit("amount.unusual_merchant")["values"]["history"] == 21


# --- velocity --------------------------------------------------------------------


def test_the_sixth_payment_of_a_payer_within_a_minute_is_held(till, risk_clock):
    payer = payer_with(1_000 * YUAN)
    for i in range(5):
        assert till(payer, 10 * YUAN, at=NOON + timedelta(seconds=i)).status == "completed"
    sixth = till(payer, 10 * YUAN, at=NOON + timedelta(seconds=10))
    assert sixth.status == "held"
    assert sixth.reasons == ["velocity_payer"]
    assert sixth.hit("velocity.payer")["values"] == {"count": 6, "max_count": 5, "window_s": 60}


def test_payments_outside_the_window_do_not_count(till):
    payer = payer_with(1_000 * YUAN)
    for i in range(5):
        till(payer, 10 * YUAN, at=NOON + timedelta(seconds=i))
    later = till(payer, 10 * YUAN, at=NOON + timedelta(seconds=90))
    assert later.status == "completed"
    assert later.reasons == []


def test_terminal_velocity_with_a_per_merchant_override(till, merchant, compliance, beijing_pos):
    risk_rule_config_set(
        rule_code="velocity.terminal",
        scope="merchant",
        merchant=merchant,
        params={"max_count": 3},
        actor=compliance,
        reason="small shop",
    )
    for i in range(3):
        paid = till(payer_with(100 * YUAN), 10 * YUAN, at=NOON + timedelta(seconds=i))
        assert paid.status == "completed"
    fourth = till(payer_with(100 * YUAN), 10 * YUAN, at=NOON + timedelta(seconds=5))
    assert fourth.status == "held"
    assert fourth.reasons == ["velocity_terminal"]
    elsewhere = till(payer_with(100 * YUAN), 10 * YUAN, pos=beijing_pos, where=BEIJING)
    assert elsewhere.status == "completed"


def test_merchant_velocity_per_merchant_category(till, merchant, compliance):
    risk_rule_config_set(
        rule_code="velocity.merchant",
        scope="mcc",
        mcc=merchant.mcc,
        params={"max_count": 3, "score": 70},
        actor=compliance,
        reason="category",
    )
    for i in range(3):
        paid = till(payer_with(100 * YUAN), 10 * YUAN, at=NOON + timedelta(seconds=i))
        assert paid.reasons == []
    fourth = till(payer_with(100 * YUAN), 10 * YUAN, at=NOON + timedelta(seconds=5))
    assert fourth.status == "held"  # 70 points reach the hold threshold
    assert fourth.reasons == ["velocity_merchant", "score_threshold"]


def test_repeated_declines_decline_the_next_payment(till, risk_clock):
    broke = payer_with(0)
    for i in range(3):
        paid = till(broke, 10 * YUAN, at=NOON + timedelta(seconds=i))
        assert paid.status == "declined"
        # the third still sees only two earlier declines: at the limit, not over it
        assert paid.reasons == ["insufficient_funds"]
    wallet_top_up(payer=broke, amount=Money(100 * YUAN), reason="test funding", actor="test")
    over = till(broke, 10 * YUAN, at=NOON + timedelta(seconds=10))
    assert over.status == "declined"
    assert over.reasons == ["repeated_declines"]


def _wrong_then_right(till, payer, wrong: int):
    waiting = till(payer, 1_500 * YUAN)
    assert waiting.status == "awaiting_password"
    for _ in range(wrong):
        assert till.confirm(waiting, "975312").http_status == 403
    return till.confirm(waiting, PAYMENT_PASSWORD)


def test_repeated_wrong_payment_passwords_decline(till):
    at_limit = _wrong_then_right(till, with_payment_password(payer_with(3_000 * YUAN)), 2)
    assert at_limit.status == "completed"
    over = _wrong_then_right(till, with_payment_password(payer_with(3_000 * YUAN)), 3)
    assert over.status == "declined"
    assert over.reasons[0] == "repeated_wrong_password"


# --- time ------------------------------------------------------------------------


def test_a_payment_outside_business_hours_scores(till):
    payer = payer_with(1_000 * YUAN)
    inside = till(payer, 10 * YUAN, at=local(21, 59))  # the shop closes at 22:00
    assert inside.reasons == []
    after = till(payer, 10 * YUAN, at=local(22, 30))
    assert after.reasons == ["outside_business_hours"]
    assert after.record.score == 30
    assert after.status == "completed"  # 30 points alone change nothing
    assert after.hit("time.outside_hours")["values"]["local_time"] == "22:30:00"


def test_business_hours_past_midnight(till, shop):
    shop.opens_at, shop.closes_at = time(18, 0), time(2, 0)
    shop.save(update_fields=["opens_at", "closes_at"])
    payer = payer_with(1_000 * YUAN)
    assert till(payer, 10 * YUAN, at=local(1, 0)).reasons == []
    assert till(payer, 10 * YUAN, at=local(2, 30)).reasons == ["outside_business_hours"]


def test_a_large_amount_at_night_needs_the_password(till, compliance):
    _set("amount.password_free_daily", compliance, daily_limit=10_000_000)
    _set("amount.single_limit", compliance, max_amount=10_000_000)
    at_two = local(2, 0)
    large = till(payer_with(6_000 * YUAN), 500_000, at=at_two)
    assert large.status == "awaiting_password"
    assert "large_amount_at_night" in large.reasons
    under = till(payer_with(6_000 * YUAN), 499_999, at=at_two)
    assert "large_amount_at_night" not in under.reasons
    assert under.status == "completed"
    by_day = till(payer_with(6_000 * YUAN), 500_000, at=local(12, 0))
    assert "large_amount_at_night" not in by_day.reasons


# --- location ------------------------------------------------------------------------


def test_a_terminal_outside_its_shop_radius_is_held(till):
    # bind radius 300 m + 100 m tolerance
    moved = till(payer_with(100 * YUAN), 10 * YUAN, where=_north_of_shop(410))
    assert moved.status == "held"
    assert moved.reasons == ["terminal_outside_shop"]
    assert 405 <= moved.hit("location.terminal_moved")["values"]["distance_m"] <= 415
    inside = till(payer_with(100 * YUAN), 10 * YUAN, where=_north_of_shop(390))
    assert inside.status == "completed"
    assert inside.reasons == []


def test_beijing_then_shanghai_ten_minutes_later_is_impossible_travel(till, beijing_pos):
    payer = payer_with(1_000 * YUAN)
    first = till(payer, 10 * YUAN, pos=beijing_pos, where=BEIJING, at=NOON)
    assert first.status == "completed"
    then = till(payer, 10 * YUAN, where=SHANGHAI, at=NOON + timedelta(minutes=10))
    assert then.status == "held"
    assert then.reasons == ["impossible_travel"]
    values = then.hit("location.impossible_travel")["values"]
    assert values["speed_kmh"] > 6000
    assert values["elapsed_s"] == 600
    assert 1_000_000 < values["distance_m"] < 1_100_000


def test_beijing_then_shanghai_a_day_later_is_fine(till, beijing_pos):
    payer = payer_with(1_000 * YUAN)
    till(payer, 10 * YUAN, pos=beijing_pos, where=BEIJING, at=NOON)
    then = till(payer, 10 * YUAN, where=SHANGHAI, at=NOON + timedelta(days=1))
    assert then.status == "completed"
    assert then.reasons == []


def test_far_apart_at_the_same_instant_is_caught_without_dividing_by_zero(till, beijing_pos):
    payer = payer_with(1_000 * YUAN)
    till(payer, 10 * YUAN, pos=beijing_pos, where=BEIJING, at=NOON)
    same_instant = till(payer, 10 * YUAN, where=SHANGHAI, at=NOON)
    assert same_instant.reasons == ["impossible_travel"]
    assert same_instant.hit("location.impossible_travel")["values"]["speed_kmh"] is None


def test_a_payment_decided_earlier_than_the_last_one_is_guarded(till, beijing_pos):
    payer = payer_with(1_000 * YUAN)
    till(payer, 10 * YUAN, pos=beijing_pos, where=BEIJING, at=NOON)
    earlier = till(payer, 10 * YUAN, where=SHANGHAI, at=NOON - timedelta(minutes=3))
    assert earlier.reasons == ["impossible_travel"]
    assert earlier.hit("location.impossible_travel")["values"]["elapsed_s"] < 0
    # the earlier (held) payment does not move the payer's last known place
    assert PayerRiskState.objects.get(payer_id=payer.pk).last_at == NOON


def test_the_same_place_at_the_same_instant_is_not_travel(till):
    payer = payer_with(1_000 * YUAN)
    till(payer, 10 * YUAN)
    assert till(payer, 10 * YUAN).reasons == []


# --- lists ---------------------------------------------------------------------------


@pytest.mark.parametrize("subject_type", ["payer", "terminal", "merchant"])
def test_block_lists_decline(till, merchant, compliance, subject_type):
    payer = payer_with(100 * YUAN)
    subject_id = {
        "payer": payer.pk,
        "terminal": Terminal.objects.get(merchant=merchant).pk,
        "merchant": merchant.pk,
    }[subject_type]
    risk_list_entry_add(
        kind="block",
        subject_type=subject_type,
        subject_id=subject_id,
        reason="fraud",
        actor=compliance,
    )
    paid = till(payer, 10 * YUAN)
    assert paid.status == "declined"
    assert paid.reasons == ["blocked"]


def test_an_expired_block_entry_no_longer_applies(till, compliance, risk_clock):
    payer = payer_with(100 * YUAN)
    risk_list_entry_add(
        kind="block",
        subject_type="payer",
        subject_id=payer.pk,
        reason="fraud",
        actor=compliance,
        expires_at=NOON + timedelta(hours=1),
    )
    assert till(payer, 10 * YUAN, at=NOON + timedelta(minutes=59)).status == "declined"
    assert till(payer, 10 * YUAN, at=NOON + timedelta(hours=1)).status == "completed"


def test_an_allow_entry_skips_the_rules_it_names(till, merchant, compliance):
    risk_list_entry_add(
        kind="allow",
        subject_type="terminal",
        subject_id=Terminal.objects.get(merchant=merchant).pk,
        reason="mobile stall",
        actor=compliance,
        skip_rules=["location.terminal_moved"],
    )
    paid = till(payer_with(100 * YUAN), 10 * YUAN, where=_north_of_shop(5_000))
    assert paid.status == "completed"
    assert "location.terminal_moved" in paid.record.inputs["skipped"]


def test_an_allow_entry_does_not_skip_the_block_list(till, compliance):
    payer = payer_with(100 * YUAN)
    risk_list_entry_add(
        kind="allow",
        subject_type="payer",
        subject_id=payer.pk,
        reason="vip",
        actor=compliance,
        skip_rules=["*"],
    )
    risk_list_entry_add(
        kind="block", subject_type="payer", subject_id=payer.pk, reason="fraud", actor=compliance
    )
    assert till(payer, 10 * YUAN).status == "declined"


# --- circuit breaker, shadow mode, configuration ---------------------------------------


def test_the_circuit_breaker_alerts_when_most_of_a_merchants_payments_are_held(
    till, compliance, merchant
):
    _set("breaker.merchant", compliance, min_payments=4, max_share_pct=50)
    till(payer_with(100 * YUAN), 10 * YUAN)
    for i in range(3):
        moved = till(
            payer_with(100 * YUAN),
            10 * YUAN,
            where=_north_of_shop(1_000),
            at=NOON + timedelta(seconds=i + 1),
        )
        assert moved.status == "held"
    alert = Alert.objects.get(kind="circuit_breaker")
    assert alert.severity == "critical"
    assert alert.merchant_id == merchant.pk
    assert alert.detail["negative"] == 3
    assert alert.detail["total"] == 4


def test_the_circuit_breaker_stays_quiet_at_half_held(till, compliance):
    _set("breaker.merchant", compliance, min_payments=4, max_share_pct=50)
    till(payer_with(100 * YUAN), 10 * YUAN)
    till(payer_with(100 * YUAN), 10 * YUAN, at=NOON + timedelta(seconds=1))
    for i in range(2):
        till(
            payer_with(100 * YUAN),
            10 * YUAN,
            where=_north_of_shop(1_000),
            at=NOON + timedelta(seconds=i + 2),
        )
    assert not Alert.objects.filter(kind="circuit_breaker").exists()


def test_a_shadow_rule_is_recorded_but_changes_nothing(till, compliance):
    risk_rule_config_set(
        rule_code="amount.single_limit",
        mode="shadow",
        params={"max_amount": 5_000},
        actor=compliance,
    )
    paid = till(payer_with(100 * YUAN), 5_001)
    assert paid.status == "completed"
    assert paid.reasons == []
    assert paid.hit("amount.single_limit")["shadow"] is True


def test_a_rule_change_applies_to_the_next_payment_and_its_version_is_recorded(till, compliance):
    assert till(payer_with(2_000 * YUAN), 60_000).status == "completed"
    config = _set("amount.single_limit", compliance, max_amount=50_000)
    paid = till(payer_with(2_000 * YUAN), 60_000)
    assert paid.status == "held"
    assert paid.record.rule_versions["amount.single_limit"] == f"code+default:v{config.version}"


# --- fail closed -----------------------------------------------------------------------


def test_redis_down_velocity_rules_fail_closed(till, settings):
    # Risk's counters pointed at a closed port (a real connection, not a
    # mock); the live server reads the same settings, being a thread of this
    # process. Only risk's Redis: the signed API's own replay cache and rate
    # limits keep working, so the payment reaches risk.
    settings.RISK_REDIS_URL = "redis://127.0.0.1:9/0"
    settings.RISK_REDIS_TIMEOUT_MS = 200
    payer = payer_with(100 * YUAN)
    paid = till(payer, 10 * YUAN)
    assert paid.status == "held"
    assert "velocity_unavailable" in paid.reasons
    assert paid.record.inputs["velocity_available"] is False
    assert SecurityEvent.objects.filter(
        kind="risk_counters_unavailable", severity="critical"
    ).exists()
    assert Alert.objects.filter(kind="risk_counters_unavailable", severity="critical").exists()


@pytest.mark.redis
def test_with_redis_up_the_same_payment_is_approved(till):
    paid = till(payer_with(100 * YUAN), 10 * YUAN)
    assert paid.status == "completed"
    assert paid.record.inputs["velocity_available"] is True

"""A payment HELD through the real payment API, then decided by compliance
(in the admin, or through the risk services): approval releases the money
to the merchant minus the fee, decline and expiry return all of it to the
payer, the terminal sees the payment follow, and the ledger stays balanced.
Above the configured amount, two different approvers are needed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.core.money import Money
from apps.risk.errors import SecondApproverRequired
from apps.risk.models import RiskCase, RiskHold
from apps.risk.services import (
    risk_case_approve,
    risk_case_claim,
    risk_case_decline,
    risk_holds_expire,
    risk_rule_config_set,
)
from apps.transactions.selectors import ledger_integrity_problems
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import otp_force_login
from tests.risk.conftest import payer_with
from tests.transactions.factories import FEE, HOLD, balance_of, platform_balance

pytestmark = pytest.mark.django_db(transaction=True)

FUNDS = 100_000  # ¥1,000 in the payer's wallet
AMOUNT = 60_000  # ¥600, over the ¥500 single limit set below


@pytest.fixture
def held(till, compliance, merchant):
    """(payer, the API's answer, the case) for a ¥600 payment held by the
    single-payment limit."""
    risk_rule_config_set(
        rule_code="amount.single_limit", params={"max_amount": 50_000}, actor=compliance
    )
    payer = payer_with(FUNDS)
    answered = till(payer, AMOUNT)
    assert answered.status == "held"
    assert answered.reasons == ["amount_over_single_limit"]
    case = RiskCase.objects.get(payment_public_id=answered.id)
    return payer, answered, case


@pytest.fixture
def reviewer(db):
    return UserFactory(is_staff=True)


def _status_seen_by_the_terminal(pos, payment_id: str) -> str:
    response = pos.get(f"/api/v1/terminal/payments/{payment_id}")
    assert response.status_code == 200
    return response.json()["status"]


def test_a_held_payments_money_sits_in_the_risk_hold(held, merchant):
    payer, answered, case = held
    assert balance_of(payer=payer) == FUNDS - AMOUNT
    assert platform_balance(HOLD) == AMOUNT
    assert balance_of(merchant=merchant) == 0
    assert case.kind == RiskCase.Kind.PAYMENT_HOLD
    assert case.amount == AMOUNT
    assert str(case.decision.public_id) == answered.body["risk_decision_id"]
    assert case.hold.status == RiskHold.Status.HELD
    assert ledger_integrity_problems() == []


def test_approved_in_the_admin_the_merchant_gets_the_amount_minus_the_fee(
    held, merchant, client, compliance, pos
):
    payer, answered, case = held
    otp_force_login(client, compliance)
    url = reverse("admin:risk_riskcase_review", args=[case.pk])
    client.post(url, {"action": "claim"})
    response = client.post(url, {"action": "approve", "reason": "regular customer, confirmed"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    fee = Money(AMOUNT).fee(merchant.discount_rate_bp).amount
    assert balance_of(payer=payer) == FUNDS - AMOUNT
    assert balance_of(merchant=merchant) == AMOUNT - fee
    assert platform_balance(FEE) == fee
    assert platform_balance(HOLD) == 0
    case.refresh_from_db()
    assert case.status == RiskCase.Status.APPROVED
    assert case.hold.status == RiskHold.Status.RELEASED
    assert _status_seen_by_the_terminal(pos, answered.id) == "completed"
    assert ledger_integrity_problems() == []


def test_declined_the_whole_amount_returns_to_the_payer(held, merchant, reviewer, pos):
    payer, answered, case = held
    risk_case_claim(case=case, reviewer=reviewer)
    risk_case_decline(case=case, reviewer=reviewer, reason="payer did not make this payment")
    assert balance_of(payer=payer) == FUNDS
    assert balance_of(merchant=merchant) == 0
    assert platform_balance(FEE) == 0
    assert platform_balance(HOLD) == 0
    case.refresh_from_db()
    assert case.status == RiskCase.Status.DECLINED
    assert case.hold.status == RiskHold.Status.RETURNED
    assert _status_seen_by_the_terminal(pos, answered.id) == "returned"
    assert ledger_integrity_problems() == []


def test_an_undecided_hold_expires_back_to_the_payer(held, merchant, pos):
    payer, answered, case = held
    second = timedelta(seconds=1)
    assert risk_holds_expire(now=case.expires_at - second) == 0
    assert risk_holds_expire(now=case.expires_at + second) == 1
    assert balance_of(payer=payer) == FUNDS
    assert platform_balance(HOLD) == 0
    assert balance_of(merchant=merchant) == 0
    assert _status_seen_by_the_terminal(pos, answered.id) == "returned"
    assert ledger_integrity_problems() == []


def test_above_the_amount_a_second_different_approver_is_needed(
    held, merchant, reviewer, settings, pos
):
    settings.RISK_SECOND_APPROVER_AMOUNT = AMOUNT  # "at or above"
    payer, answered, case = held
    risk_case_claim(case=case, reviewer=reviewer)
    case = risk_case_approve(case=case, reviewer=reviewer, reason="looks fine")
    assert case.status == RiskCase.Status.AWAITING_SECOND
    # nothing has moved yet
    assert platform_balance(HOLD) == AMOUNT
    assert balance_of(merchant=merchant) == 0
    assert _status_seen_by_the_terminal(pos, answered.id) == "held"
    risk_case_claim(case=case, reviewer=reviewer)
    with pytest.raises(SecondApproverRequired):
        risk_case_approve(case=case, reviewer=reviewer, reason="me again")
    assert platform_balance(HOLD) == AMOUNT
    RiskCase.objects.filter(pk=case.pk).update(locked_by=None, locked_until=None)
    second = UserFactory(is_staff=True)
    risk_case_claim(case=case, reviewer=second)
    case = risk_case_approve(case=case, reviewer=second, reason="agree")
    assert case.status == RiskCase.Status.APPROVED
    fee = Money(AMOUNT).fee(merchant.discount_rate_bp).amount
    assert balance_of(merchant=merchant) == AMOUNT - fee
    assert balance_of(payer=payer) == FUNDS - AMOUNT
    assert platform_balance(HOLD) == 0
    assert _status_seen_by_the_terminal(pos, answered.id) == "completed"
    assert ledger_integrity_problems() == []


def test_just_below_the_amount_one_approver_is_enough(held, reviewer, settings):
    settings.RISK_SECOND_APPROVER_AMOUNT = AMOUNT + 1
    _payer, _answered, case = held
    risk_case_claim(case=case, reviewer=reviewer)
    case = risk_case_approve(case=case, reviewer=reviewer, reason="ok")
    assert case.status == RiskCase.Status.APPROVED
    assert platform_balance(HOLD) == 0

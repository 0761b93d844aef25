"""Held payments: the money sits in the risk-hold account; approval releases
it to the merchant (minus the fee), decline returns it to the payer, expiry
returns it too; two different approvers above the configured amount."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditRecord
from apps.core.money import Money
from apps.risk.errors import (
    CaseLocked,
    CaseNotClaimed,
    CaseNotOpen,
    ReasonRequired,
    SecondApproverRequired,
)
from apps.risk.models import ListEntry, RiskCase, RiskHold
from apps.risk.services import (
    risk_case_approve,
    risk_case_claim,
    risk_case_decline,
    risk_case_open,
    risk_holds_expire,
)
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import ledger_hold_place
from tests.accounts.factories import UserFactory
from tests.risk.conftest import held_payment_case
from tests.transactions.factories import (
    FEE,
    HOLD,
    balance_of,
    funded_payer,
    merchant_with_rate,
    platform_balance,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(db):
    """A payer with ¥1,000 whose ¥300 payment at a 0.38% merchant is held."""

    def make(amount: int = 30_000):
        return held_payment_case(amount=amount, payer_funds=100_000)

    return make


@pytest.fixture
def reviewer(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def second_reviewer(db):
    return UserFactory(is_staff=True)


def test_a_held_payment_sits_in_the_risk_hold_account(held):
    payer, merchant, case = held()
    assert balance_of(payer=payer) == 70_000
    assert platform_balance(HOLD) == 30_000
    assert balance_of(merchant=merchant) == 0
    assert RiskHold.objects.for_merchant(merchant).get().status == RiskHold.Status.HELD
    assert case.expires_at > timezone.now() + timedelta(hours=71)


def test_approval_releases_the_money_to_the_merchant_minus_the_fee(held, reviewer):
    payer, merchant, case = held()
    risk_case_claim(case=case, reviewer=reviewer)
    risk_case_approve(case=case, reviewer=reviewer, reason="customer confirmed by phone")
    fee = Money(30_000).fee(38).amount  # 114 fen
    assert balance_of(merchant=merchant) == 30_000 - fee
    assert platform_balance(FEE) == fee
    assert platform_balance(HOLD) == 0
    assert balance_of(payer=payer) == 70_000
    case.refresh_from_db()
    assert case.status == RiskCase.Status.APPROVED
    assert case.hold.status == RiskHold.Status.RELEASED
    assert ledger_integrity_problems() == []
    assert AuditRecord.objects.filter(
        action="risk.case_approved", target_id=str(case.public_id)
    ).exists()


def test_decline_returns_the_whole_amount_to_the_payer(held, reviewer):
    payer, merchant, case = held()
    risk_case_claim(case=case, reviewer=reviewer)
    risk_case_decline(
        case=case, reviewer=reviewer, reason="card testing pattern", block_payer_days=30
    )
    assert balance_of(payer=payer) == 100_000
    assert platform_balance(HOLD) == 0
    assert balance_of(merchant=merchant) == 0
    case.refresh_from_db()
    assert case.status == RiskCase.Status.DECLINED
    assert case.hold.status == RiskHold.Status.RETURNED
    block = ListEntry.objects.get(subject_type="payer", subject_id=payer.pk)
    assert block.source_case == case
    assert block.expires_at > timezone.now() + timedelta(days=29)
    assert ledger_integrity_problems() == []


def test_a_decided_case_cannot_be_decided_again(held, reviewer):
    _payer, _merchant, case = held()
    risk_case_claim(case=case, reviewer=reviewer)
    risk_case_decline(case=case, reviewer=reviewer, reason="fraud")
    with pytest.raises(CaseNotOpen):
        risk_case_claim(case=case, reviewer=reviewer)
    with pytest.raises(CaseNotOpen):
        risk_case_approve(case=case, reviewer=reviewer, reason="oops")
    assert platform_balance(HOLD) == 0


def test_a_decision_needs_a_reason(held, reviewer):
    _payer, _merchant, case = held()
    risk_case_claim(case=case, reviewer=reviewer)
    with pytest.raises(ReasonRequired):
        risk_case_approve(case=case, reviewer=reviewer, reason="   ")
    assert platform_balance(HOLD) == 30_000


def test_a_case_must_be_claimed_before_it_is_decided(held, reviewer):
    _payer, _merchant, case = held()
    with pytest.raises(CaseNotClaimed):
        risk_case_approve(case=case, reviewer=reviewer, reason="fine")


def test_a_claimed_case_is_locked_against_other_reviewers(held, reviewer, second_reviewer):
    _payer, _merchant, case = held()
    risk_case_claim(case=case, reviewer=reviewer)
    with pytest.raises(CaseLocked):
        risk_case_claim(case=case, reviewer=second_reviewer)
    with pytest.raises(CaseNotClaimed):
        risk_case_decline(case=case, reviewer=second_reviewer, reason="mine now")
    # an expired lock may be taken over
    RiskCase.objects.filter(pk=case.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    risk_case_claim(case=case, reviewer=second_reviewer)


def test_above_the_amount_a_second_different_approver_is_needed(
    held, reviewer, second_reviewer, settings
):
    settings.RISK_SECOND_APPROVER_AMOUNT = 30_000
    _payer, merchant, case = held(30_000)
    risk_case_claim(case=case, reviewer=reviewer)
    case = risk_case_approve(case=case, reviewer=reviewer, reason="looks fine")
    assert case.status == RiskCase.Status.AWAITING_SECOND
    assert platform_balance(HOLD) == 30_000  # nothing moved yet
    risk_case_claim(case=case, reviewer=reviewer)
    with pytest.raises(SecondApproverRequired):
        risk_case_approve(case=case, reviewer=reviewer, reason="me again")
    assert platform_balance(HOLD) == 30_000
    risk_case_claim(case=RiskCase.objects.get(pk=case.pk), reviewer=reviewer)  # still theirs
    RiskCase.objects.filter(pk=case.pk).update(locked_by=None, locked_until=None)
    risk_case_claim(case=case, reviewer=second_reviewer)
    case = risk_case_approve(case=case, reviewer=second_reviewer, reason="agree")
    assert case.status == RiskCase.Status.APPROVED
    assert platform_balance(HOLD) == 0
    assert balance_of(merchant=merchant) == 30_000 - Money(30_000).fee(38).amount
    assert ledger_integrity_problems() == []


def test_below_the_amount_one_approver_is_enough(held, reviewer, settings):
    settings.RISK_SECOND_APPROVER_AMOUNT = 30_001
    _payer, _merchant, case = held(30_000)
    risk_case_claim(case=case, reviewer=reviewer)
    assert (
        risk_case_approve(case=case, reviewer=reviewer, reason="ok").status
        == RiskCase.Status.APPROVED
    )


def test_an_undecided_hold_expires_back_to_the_payer(held):
    payer, _merchant, case = held()
    assert risk_holds_expire() == 0
    assert risk_holds_expire(now=case.expires_at + timedelta(seconds=1)) == 1
    case.refresh_from_db()
    assert case.status == RiskCase.Status.EXPIRED
    assert case.hold.status == RiskHold.Status.EXPIRED
    assert balance_of(payer=payer) == 100_000
    assert platform_balance(HOLD) == 0
    assert ledger_integrity_problems() == []
    assert risk_holds_expire(now=case.expires_at + timedelta(hours=1)) == 0


def test_the_payment_services_hold_sequence_end_to_end(
    reviewer, compliance, django_capture_on_commit_callbacks
):
    """The sequence the payment service follows (apps/risk/engine.py's
    docstring): decide, hold the money, tell risk, open the case; compliance
    approves and the money reaches the merchant."""
    from django.db import transaction

    from apps.risk.engine import payment_context_build, risk_decide, risk_record_payment
    from apps.risk.services import risk_rule_config_set
    from tests.accounts.factories import ShopFactory

    payer = funded_payer(100_000, account_class="III")
    merchant = merchant_with_rate(38)
    shop = ShopFactory(merchant=merchant, opens_at="00:00", closes_at="00:00")
    terminal = type("T", (), {"pk": 77, "shop": shop, "bind_radius_m": 200})()
    risk_rule_config_set(
        rule_code="amount.single_limit", params={"max_amount": 20_000}, actor=compliance
    )
    payment_id = uuid.uuid4()
    ctx = payment_context_build(
        payer=payer,
        merchant=merchant,
        terminal=terminal,
        amount=25_000,
        latitude=shop.latitude,
        longitude=shop.longitude,
        password_verified=True,
        payment_public_id=payment_id,
    )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        decision = risk_decide(ctx=ctx)
        assert decision.outcome == "hold"
        entry = ledger_hold_place(
            payer=payer,
            merchant=merchant,
            amount=Money(25_000),
            event=("transactions.payment", str(payment_id)),
        )
        risk_record_payment(
            ctx=ctx, decision=decision, outcome="held", payment_public_id=payment_id
        )
        case = risk_case_open(
            kind=RiskCase.Kind.PAYMENT_HOLD,
            title="Held: over the single limit",
            merchant=merchant,
            decision_public_id=decision.public_id,
            payment_public_id=payment_id,
            hold_entry_public_id=entry.public_id,
            payer_id=payer.pk,
            amount=25_000,
        )
    assert case.decision.reasons == ["amount_over_single_limit"]
    assert case.decision.payment_outcome == "held"
    risk_case_claim(case=case, reviewer=reviewer)
    risk_case_approve(case=case, reviewer=reviewer, reason="regular customer, confirmed")
    assert balance_of(merchant=merchant) == 25_000 - Money(25_000).fee(38).amount
    assert balance_of(payer=payer) == 75_000
    assert platform_balance(HOLD) == 0
    assert ledger_integrity_problems() == []

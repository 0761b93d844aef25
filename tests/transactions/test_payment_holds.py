"""A payment risk holds: money goes to the risk hold with a case; the
compliance decision (apps.risk) moves it on and the payment follows."""

from __future__ import annotations

import uuid

import pytest

from apps.risk.models import RiskCase
from apps.risk.services import risk_case_approve, risk_case_claim, risk_case_decline
from apps.terminals.services import terminal_register
from apps.transactions.models import Payment, PaymentStatus
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import payment_code_issue, payment_create
from tests.accounts.factories import MembershipFactory, ShopFactory
from tests.transactions.factories import HOLD, balance_of, funded_payer, platform_balance
from tests.transactions.pos import staff_with_pin

# transaction=True: with Redis, risk records its velocity counters on commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held(merchant):
    """make() → a payment held by the payer velocity rule (the 6th quick
    payment of one payer)."""
    from apps.risk.config import config_invalidate

    # Risk keeps its allow lists in process memory for a few seconds; an
    # earlier test's entry for a payer id that the flush let be reused
    # must not exempt this test's payer.
    config_invalidate()
    shop = ShopFactory(merchant=merchant)
    owner = MembershipFactory(merchant=merchant, role="owner").user
    terminal, _ = terminal_register(
        merchant=merchant, shop=shop, serial_number="SN-H", model="", bind_radius_m=300, actor=owner
    )
    operator = staff_with_pin(merchant, "cashier")

    def make() -> Payment:
        payer = funded_payer(100_00)
        for _ in range(8):
            key = uuid.uuid4().hex
            answer = payment_create(
                terminal=terminal,
                idempotency_key=key,
                digest=key,
                amount=1_00,
                currency="CNY",
                payment_code=payment_code_issue(payer=payer).code,
                operator_id=str(operator.public_id),
            )
            if answer.body["status"] == PaymentStatus.HELD:
                return Payment.objects.get(public_id=answer.body["id"])
        raise AssertionError("no payment was held")

    return make


def test_a_held_payment_released_by_compliance_completes_and_pays_the_merchant(
    held, merchant, compliance
):
    payment = held()
    assert platform_balance(HOLD) == 1_00
    before = balance_of(merchant=merchant)
    case = RiskCase.objects.get(payment_public_id=payment.public_id)
    risk_case_claim(case=case, reviewer=compliance)
    risk_case_approve(case=case, reviewer=compliance, reason="known customer")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED
    assert balance_of(merchant=merchant) > before
    assert platform_balance(HOLD) == 0
    assert ledger_integrity_problems() == []


def test_a_held_payment_declined_by_compliance_returns_to_the_payer(held, compliance):
    payment = held()
    wallet_before = balance_of(payer=payment.payer)
    case = RiskCase.objects.get(payment_public_id=payment.public_id)
    risk_case_claim(case=case, reviewer=compliance)
    risk_case_decline(case=case, reviewer=compliance, reason="card testing")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.RETURNED
    assert balance_of(payer=payment.payer) == wallet_before + 1_00
    assert ledger_integrity_problems() == []


def test_stored_answers_are_kept_a_week_and_then_purged(held):
    from datetime import timedelta

    from django.utils import timezone

    from apps.transactions.models import IdempotencyRecord
    from apps.transactions.services import idempotency_purge

    held()
    count = IdempotencyRecord.objects.count()
    assert count > 0
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=6))
    assert idempotency_purge() == 0
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=9))
    assert idempotency_purge() == count

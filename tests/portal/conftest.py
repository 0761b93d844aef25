"""The portal's cast: the shared merchant/owner/cashier/outsider plus a shop,
a terminal and a payer whose payments the dashboard reads."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from apps.terminals.models import Terminal
from apps.transactions.models import Payment, PaymentStatus, Refund
from tests.accounts.factories import MembershipFactory, PayerFactory, ShopFactory


@pytest.fixture
def manager(merchant):
    return MembershipFactory(merchant=merchant, role="manager").user


@pytest.fixture
def viewer(merchant):
    return MembershipFactory(merchant=merchant, role="viewer").user


@pytest.fixture
def shop(merchant):
    return ShopFactory(merchant=merchant)


@pytest.fixture
def terminal(merchant, shop):
    return Terminal.objects.create(
        merchant=merchant, shop=shop, serial_number="SN-DASH-1", status=Terminal.Status.ACTIVE
    )


@pytest.fixture
def payer(db):
    return PayerFactory()


@pytest.fixture
def make_payment(merchant, shop, terminal, payer):
    """Writes a payment row as the payment service leaves it (the dashboard
    only reads them; how they are made is tests/transactions' business)."""
    counter = iter(range(1_000_000))

    def make(
        amount: int,
        *,
        at: datetime | None = None,
        status: str = PaymentStatus.COMPLETED,
        merchant_=None,
        terminal_=None,
    ) -> Payment:
        m = merchant_ or merchant
        t = terminal_ or terminal
        return Payment.objects.create(
            merchant=m,
            terminal=t,
            shop=t.shop,
            payer=payer,
            amount=amount,
            status=status,
            idempotency_key=f"k-{next(counter)}",
            created_at=at or timezone.now(),
        )

    return make


@pytest.fixture
def make_refund(merchant):
    def make(payment: Payment, amount: int, *, at: datetime | None = None) -> Refund:
        return Refund.objects.create(
            merchant=payment.merchant,
            payment=payment,
            amount=amount,
            created_at=at or timezone.now(),
        )

    return make

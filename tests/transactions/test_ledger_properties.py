"""Property: whatever sequence of top-ups, payments, holds, refunds,
reversals and withdrawals runs, every cached balance equals its postings,
the ledger sums to zero, no wallet or settlement account goes negative, and
each wallet holds exactly what a plain arithmetic model of it predicts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.money import Money
from apps.transactions.errors import CorrectionRefused, InsufficientFunds
from apps.transactions.models import EntryKind
from apps.transactions.selectors import (
    ledger_balance_for_merchant,
    ledger_balance_for_payer,
    ledger_integrity_problems,
)
from apps.transactions.services import (
    ledger_hold_place,
    ledger_hold_release,
    ledger_hold_return,
    ledger_payment_transfer,
    ledger_refund,
    ledger_reverse,
    merchant_withdraw,
    wallet_top_up,
)
from tests.accounts.factories import MerchantFactory, PayerFactory

PAYERS, MERCHANTS = 3, 2
_ids = itertools.count()

fen = st.integers(min_value=1, max_value=50_00)
pick = st.integers(min_value=0, max_value=10_000)  # an index, taken modulo the list it picks from
operation = st.one_of(
    st.tuples(st.just("top_up"), pick, fen),
    st.tuples(st.just("pay"), pick, pick, fen),
    st.tuples(st.just("hold"), pick, pick, fen),
    st.tuples(st.just("release"), pick),
    st.tuples(st.just("return"), pick),
    st.tuples(st.just("refund"), pick, fen),
    st.tuples(st.just("reverse"), pick),
    st.tuples(st.just("withdraw"), pick, fen),
)


@pytest.fixture
def cast(db):
    # Created once and shared by all examples (users are slow to make):
    # each example starts its wallet model from the balances it finds.
    return [PayerFactory() for _ in range(PAYERS)], [MerchantFactory() for _ in range(MERCHANTS)]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rates=st.lists(st.integers(min_value=0, max_value=600), min_size=MERCHANTS, max_size=MERCHANTS),
    funding=st.lists(
        st.integers(min_value=20_00, max_value=300_00), min_size=PAYERS, max_size=PAYERS
    ),
    operations=st.lists(operation, min_size=1, max_size=40),
)
def test_any_sequence_of_money_movements_keeps_the_ledger_whole(cast, rates, funding, operations):
    payers, merchants = cast
    for merchant, rate in zip(merchants, rates, strict=True):
        merchant.discount_rate_bp = rate
        merchant.save(update_fields=["discount_rate_bp"])
    # The model: what each wallet must hold.
    wallets = [ledger_balance_for_payer(payer=payer).amount for payer in payers]
    sales, holds, entries = [], [], []  # (entry, payer index) of what happened so far

    # Funded wallets first, so that most sequences get past the first payment.
    operations = [("top_up", p, amount) for p, amount in enumerate(funding)] + operations

    def event():
        return ("test.property", str(next(_ids)))

    for op, *args in operations:
        if op == "top_up":
            p, amount = args[0] % PAYERS, args[1]
            entries.append(
                (
                    wallet_top_up(
                        payer=payers[p], amount=Money(amount), reason="prop", actor="test"
                    ),
                    p,
                )
            )
            wallets[p] += amount
        elif op in ("pay", "hold"):
            p, m, amount = args[0] % PAYERS, args[1] % MERCHANTS, args[2]
            service = ledger_payment_transfer if op == "pay" else ledger_hold_place
            try:
                entry = service(
                    payer=payers[p], merchant=merchants[m], amount=Money(amount), event=event()
                )
            except InsufficientFunds:
                assert wallets[p] < amount
                continue
            assert wallets[p] >= amount
            wallets[p] -= amount
            (sales if op == "pay" else holds).append((entry, p))
            entries.append((entry, p))
        elif op in ("release", "return") and holds:
            hold, p = holds[args[0] % len(holds)]
            service = ledger_hold_release if op == "release" else ledger_hold_return
            try:
                entry = service(hold_entry=hold)
            except CorrectionRefused:
                continue
            if op == "release":
                sales.append((entry, p))
            else:
                wallets[p] += hold.postings.get(amount__lt=0).amount * -1
        elif op == "refund" and sales:
            sale, p = sales[args[0] % len(sales)]
            try:
                ledger_refund(original=sale, amount=Money(args[1]), event=event())
            except (CorrectionRefused, InsufficientFunds):
                continue
            wallets[p] += args[1]
        elif op == "reverse" and entries:
            original, p = entries[args[0] % len(entries)]
            try:
                ledger_reverse(original=original)
            except (CorrectionRefused, InsufficientFunds):
                continue
            # A top-up reversed takes the money back; a payment or hold reversed returns it.
            wallets[p] += -sum(
                x.amount for x in original.postings.all() if x.account.payer_id == payers[p].pk
            )
            if original.kind == EntryKind.TOP_UP:
                assert wallets[p] >= 0
        elif op == "withdraw":
            m, amount = args[0] % MERCHANTS, args[1]
            before = ledger_balance_for_merchant(merchant=merchants[m]).amount
            try:
                merchant_withdraw(merchant=merchants[m], amount=Money(amount), actor="test")
            except InsufficientFunds:
                assert before < amount
                continue
            assert before >= amount

    assert ledger_integrity_problems() == []
    assert [ledger_balance_for_payer(payer=payer).amount for payer in payers] == wallets
    assert all(ledger_balance_for_merchant(merchant=m).amount >= 0 for m in merchants)

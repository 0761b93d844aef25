"""Property: any sequence of top-ups, POS payments, refunds (partial or
full), reversals by idempotency key and withdrawals, run through the
payment services, keeps every cached balance equal to its postings, the
ledger summing to zero, each wallet equal to a plain model of it, and no
payment refunded beyond its amount."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.money import Money
from apps.terminals.services import terminal_register
from apps.transactions.errors import InsufficientFunds, PaymentError
from apps.transactions.models import Payment, PaymentStatus
from apps.transactions.selectors import ledger_balance_for_payer, ledger_integrity_problems
from apps.transactions.services import (
    merchant_withdraw,
    payment_code_issue,
    payment_create,
    payment_refund_by_user,
    payment_reverse,
    wallet_top_up,
)
from tests.accounts.factories import MembershipFactory, PayerFactory, ShopFactory
from tests.transactions.pos import risk_exempt, staff_with_pin

PAYERS = 3
_keys = itertools.count()

fen = st.integers(min_value=1, max_value=80_00)
pick = st.integers(min_value=0, max_value=10_000)
operation = st.one_of(
    st.tuples(st.just("top_up"), pick, fen),
    st.tuples(st.just("pay"), pick, fen),
    st.tuples(st.just("refund"), pick, fen),
    st.tuples(st.just("reverse"), pick),
    st.tuples(st.just("reverse_unknown")),
    st.tuples(st.just("withdraw"), fen),
)


@pytest.fixture
def cast(db):
    shop = ShopFactory()
    merchant = shop.merchant
    owner = MembershipFactory(merchant=merchant, role="owner")
    terminal, _code = terminal_register(
        merchant=merchant,
        shop=shop,
        serial_number="SN-PROP",
        model="",
        bind_radius_m=300,
        actor=owner.user,
    )
    operator = staff_with_pin(merchant, "cashier")
    payers = [risk_exempt(PayerFactory()) for _ in range(PAYERS)]
    return terminal, owner, operator, payers


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_of_payments_refunds_and_reversals_keeps_the_ledger_whole(cast, operations):
    terminal, owner, operator, payers = cast
    merchant = terminal.merchant
    wallets = [ledger_balance_for_payer(payer=p).amount for p in payers]
    paid: list[tuple[str, int]] = []  # (idempotency key, payer index)
    refused: list[str] = []  # codes of refunds and reversals the services refused

    for op, *args in [("top_up", i, 100_00) for i in range(PAYERS)] + operations:
        key = f"prop-{next(_keys)}"
        if op == "top_up":
            p = args[0] % PAYERS
            wallet_top_up(payer=payers[p], amount=Money(args[1]), reason="prop", actor="test")
            wallets[p] += args[1]
        elif op == "pay":
            p, amount = args[0] % PAYERS, args[1]
            answer = payment_create(
                terminal=terminal,
                idempotency_key=key,
                digest=key,
                amount=amount,
                currency="CNY",
                payment_code=payment_code_issue(payer=payers[p]).code,
                operator_id=str(operator.public_id),
            )
            if answer.body["status"] == PaymentStatus.COMPLETED:
                assert wallets[p] >= amount
                wallets[p] -= amount
                paid.append((key, p))
            else:
                assert answer.body["status"] == PaymentStatus.DECLINED
                assert answer.body["decline_code"] == "insufficient_funds"
                assert wallets[p] < amount
        elif op == "refund" and paid:
            original, p = paid[args[0] % len(paid)]
            payment = Payment.objects.get(terminal=terminal, idempotency_key=original)
            try:
                payment_refund_by_user(
                    payment=payment, amount=args[1], reason="prop", membership=owner, form_key=key
                )
            except PaymentError as exc:
                refused.append(exc.code)
                continue
            wallets[p] += args[1]
        elif op == "reverse" and paid:
            original, p = paid[args[0] % len(paid)]
            payment = Payment.objects.get(terminal=terminal, idempotency_key=original)
            try:
                answer = payment_reverse(
                    terminal=terminal, original_key=original, idempotency_key=key, digest=key
                )
            except PaymentError as exc:
                refused.append(exc.code)
                continue
            if answer.status == 201 and answer.body["outcome"] == "reversed":
                wallets[p] += payment.amount
        elif op == "reverse_unknown":
            answer = payment_reverse(
                terminal=terminal, original_key=f"never-{key}", idempotency_key=key, digest=key
            )
            assert answer.body["outcome"] == "key_blocked"
        elif op == "withdraw":
            try:
                merchant_withdraw(merchant=merchant, amount=Money(args[0]), actor="test")
            except InsufficientFunds:
                continue

    assert set(refused) <= {
        "refund_exceeds_remaining",
        "payment_not_refundable",
        "payment_not_reversible",
        "insufficient_funds",
    }
    assert ledger_integrity_problems() == []
    assert [ledger_balance_for_payer(payer=p).amount for p in payers] == wallets
    for payment in Payment.objects.filter(terminal=terminal):
        assert 0 <= payment.refunded_amount <= payment.amount

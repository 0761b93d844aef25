"""The payment flow end to end through the signed terminal API (real HTTP
to pytest-django's live_server; every answer's signature is verified by the
TerminalClient)."""

from __future__ import annotations

import uuid

import pytest

from apps.transactions.models import (
    BatchClose,
    IdempotencyRecord,
    Payment,
    PaymentStatus,
    Refund,
    Reversal,
)
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import payment_code_issue
from tests.transactions.factories import balance_of, funded_payer
from tests.transactions.pos import PAYMENT_PASSWORD, PIN, error_code, pay, with_payment_password

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_approved_payment_moves_the_money_to_the_merchant_minus_the_fee(pos, operator, merchant):
    payer = funded_payer(100_00)
    response = pay(pos, payer, operator, 25_00)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert balance_of(payer=payer) == 75_00
    fee = merchant.discount_rate_bp * 25_00 // 10_000
    assert balance_of(merchant=merchant) >= 25_00 - fee - 1
    assert "sig;dur=" in response.headers["Server-Timing"]
    got = pos.get(f"/api/v1/terminal/payments/{body['id']}")
    assert got.status_code == 200
    assert got.json()["status"] == "completed"
    assert ledger_integrity_problems() == []


def test_a_payment_without_an_idempotency_key_is_refused_with_400(pos, operator):
    payer = funded_payer(10_00)
    body = {
        "amount": 1_00,
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
    }
    response = pos.post("/api/v1/terminal/payments", body)
    assert response.status_code == 400
    assert error_code(response) == "idempotency_key_missing"
    assert not Payment.objects.exists()


def test_the_same_key_and_body_replays_the_stored_answer_and_a_changed_body_gets_422(pos, operator):
    payer = funded_payer(100_00)
    body = {
        "amount": 10_00,
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
    }
    first = pos.post("/api/v1/terminal/payments", body, idempotency_key="k-1")
    again = pos.post("/api/v1/terminal/payments", body, idempotency_key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    changed = pos.post(
        "/api/v1/terminal/payments", {**body, "amount": 11_00}, idempotency_key="k-1"
    )
    assert changed.status_code == 422
    assert error_code(changed) == "idempotency_key_reused"
    assert Payment.objects.count() == 1
    assert balance_of(payer=payer) == 90_00
    assert IdempotencyRecord.objects.filter(key="k-1").count() == 1


def test_a_payment_above_the_password_free_limit_completes_after_the_sealed_password(pos, operator):
    payer = with_payment_password(funded_payer(3_000_00))
    created = pay(pos, payer, operator, 1_500_00)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "awaiting_password"
    assert created.json()["next_action"] == "confirm_payment_password"
    assert balance_of(payer=payer) == 3_000_00
    payment_id = created.json()["id"]
    confirmed = pos.post(
        f"/api/v1/terminal/payments/{payment_id}/confirm",
        {"password_sealed": pos.seal(PAYMENT_PASSWORD)},
        idempotency_key=uuid.uuid4().hex,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"
    assert balance_of(payer=payer) == 1_500_00


def test_five_wrong_payment_passwords_lock_the_payer_and_decline_the_payment(pos, operator):
    payer = with_payment_password(funded_payer(3_000_00))
    payment_id = pay(pos, payer, operator, 1_500_00).json()["id"]
    answers = [
        pos.post(
            f"/api/v1/terminal/payments/{payment_id}/confirm",
            {"password_sealed": pos.seal("975312")},
            idempotency_key=uuid.uuid4().hex,
        )
        for _ in range(5)
    ]
    assert [a.status_code for a in answers[:4]] == [403] * 4
    assert error_code(answers[0]) == "payment_password_wrong"
    assert answers[4].json()["status"] == "declined"
    assert answers[4].json()["decline_code"] == "payment_password_locked"
    assert balance_of(payer=payer) == 3_000_00
    # Locked: the next payment of this payer is declined at once.
    later = pay(pos, payer, operator, 10_00)
    assert later.json()["status"] == "declined"
    assert later.json()["decline_code"] == "payment_password_locked"
    from apps.audit.models import SecurityEvent

    assert SecurityEvent.objects.filter(kind="payment_password_lockout").exists()


def test_a_supervisor_refunds_in_parts_but_never_more_than_what_is_left(
    pos, operator, supervisor, merchant
):
    payer = funded_payer(100_00)
    payment_id = pay(pos, payer, operator, 40_00).json()["id"]

    def refund(amount, who=supervisor, pin=PIN):
        return pos.post(
            f"/api/v1/terminal/payments/{payment_id}/refunds",
            {
                "amount": amount,
                "reason": "customer changed mind",
                "supervisor_id": str(who.public_id),
                "supervisor_pin_sealed": pos.seal(pin),
            },
            idempotency_key=uuid.uuid4().hex,
        )

    by_cashier = refund(10_00, who=operator)
    assert by_cashier.status_code == 403
    assert error_code(by_cashier) == "supervisor_required"
    wrong_pin = refund(10_00, pin="864209")
    assert wrong_pin.status_code == 403
    assert error_code(wrong_pin) == "operator_pin_wrong"
    first = refund(15_00)
    assert first.status_code == 201, first.text
    assert first.json()["payment"]["status"] == "partially_refunded"
    too_much = refund(25_01)
    assert too_much.status_code == 422
    assert error_code(too_much) == "refund_exceeds_remaining"
    rest = refund(25_00)
    assert rest.json()["payment"]["status"] == "refunded"
    assert balance_of(payer=payer) == 100_00
    assert balance_of(merchant=merchant) == 0
    assert Refund.objects.count() == 2
    assert ledger_integrity_problems() == []


def test_a_reversal_undoes_a_payment_whose_answer_was_lost(pos, operator, merchant):
    payer = funded_payer(50_00)
    lost = pay(pos, payer, operator, 20_00, key="lost-1")
    assert lost.json()["status"] == "completed"
    reversal = pos.post(
        "/api/v1/terminal/reversals",
        {"original_idempotency_key": "lost-1"},
        idempotency_key="rev-1",
    )
    assert reversal.status_code == 201, reversal.text
    assert reversal.json()["outcome"] == "reversed"
    assert reversal.json()["payment"]["status"] == "reversed"
    assert balance_of(payer=payer) == 50_00
    assert balance_of(merchant=merchant) == 0
    assert ledger_integrity_problems() == []


def test_a_reversal_that_arrives_first_makes_the_late_original_refused(pos, operator):
    payer = funded_payer(50_00)
    reversal = pos.post(
        "/api/v1/terminal/reversals",
        {"original_idempotency_key": "never-arrived"},
        idempotency_key="rev-2",
    )
    assert reversal.json()["outcome"] == "key_blocked"
    late = pay(pos, payer, operator, 20_00, key="never-arrived")
    assert late.status_code == 409
    assert error_code(late) == "payment_key_reversed"
    assert balance_of(payer=payer) == 50_00
    assert Reversal.objects.get().payment is None


def test_batch_close_keeps_a_mismatch_between_the_terminal_and_the_server(pos, operator):
    payer = funded_payer(100_00)
    pay(pos, payer, operator, 10_00)
    pay(pos, payer, operator, 5_00)
    matched = pos.post(
        "/api/v1/terminal/batches/close",
        {"sales_count": 2, "sales_total": 15_00, "refund_count": 0, "refund_total": 0},
        idempotency_key="batch-1",
    )
    assert matched.status_code == 201, matched.text
    assert matched.json()["matched"] is True
    pay(pos, payer, operator, 7_00)
    mismatch = pos.post(
        "/api/v1/terminal/batches/close",
        {"sales_count": 2, "sales_total": 14_00},
        idempotency_key="batch-2",
    )
    assert mismatch.json()["matched"] is False
    assert mismatch.json()["differences"]["sales_count"] == {"terminal": 2, "server": 1}
    assert BatchClose.objects.filter(matched=False).count() == 1


def test_another_merchants_terminal_cannot_see_a_payment(
    pos, operator, live_server, other_merchant, tmp_path
):
    from apps.terminals.client import TerminalClient
    from apps.terminals.services import terminal_register
    from tests.accounts.factories import MembershipFactory, ShopFactory

    payer = funded_payer(10_00)
    payment_id = pay(pos, payer, operator, 1_00).json()["id"]
    other_shop = ShopFactory(merchant=other_merchant)
    _t, code = terminal_register(
        merchant=other_merchant,
        shop=other_shop,
        serial_number="SN-OTHER",
        model="P2",
        bind_radius_m=300,
        actor=MembershipFactory(merchant=other_merchant, role="owner").user,
    )
    theirs = TerminalClient(live_server.url, tmp_path / "other.json")
    theirs.activate(code)
    assert theirs.get(f"/api/v1/terminal/payments/{payment_id}").status_code == 404
    refund = theirs.post(
        f"/api/v1/terminal/payments/{payment_id}/confirm",
        {"password_sealed": theirs.seal("802461")},
        idempotency_key="x",
    )
    assert refund.status_code == 404
    assert Payment.objects.get().status == PaymentStatus.COMPLETED


def test_the_simulator_runs_a_day_through_the_signed_api_and_the_batch_matches(
    pos, operator, supervisor
):
    from apps.transactions.simulator import simulate_day
    from tests.transactions.pos import risk_exempt

    payers = [
        risk_exempt(with_payment_password(funded_payer(5_000_00)), ("velocity.payer",))
        for _ in range(4)
    ]
    stats = simulate_day(
        pos,
        payers=payers,
        code_for=lambda payer: payment_code_issue(payer=payer).code,
        operator_id=str(operator.public_id),
        supervisor_id=str(supervisor.public_id),
        supervisor_pin=PIN,
        payment_password=PAYMENT_PASSWORD,
        count=20,
        refund_share=0.3,
        reversal_share=0.15,
        seed=7,
    )
    assert stats.errors == []
    assert stats.completed > 0
    assert stats.refunds > 0
    assert stats.reversals > 0
    assert stats.batch["matched"] is True, stats.batch
    assert Reversal.objects.count() == stats.reversals
    assert ledger_integrity_problems() == []

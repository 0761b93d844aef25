"""The refund service tells risk of every refund it commits (a RefundSignal,
written in the refund's own transaction, so a refused or rolled-back refund
never counts), and the refund-ratio detector finds a merchant whose refunds
spike, from refunds made through the real terminal API."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from apps.risk.detectors import detect_refund_ratio
from apps.risk.models import Alert, RefundSignal
from tests.risk.conftest import payer_with
from tests.transactions.pos import PIN

pytestmark = pytest.mark.django_db(transaction=True)


def _refund(pos, supervisor, payment_id: str, amount: int):
    return pos.post(
        f"/api/v1/terminal/payments/{payment_id}/refunds",
        {
            "amount": amount,
            "reason": "customer returned the goods",
            "supervisor_id": str(supervisor.public_id),
            "supervisor_pin_sealed": pos.seal(PIN),
        },
        idempotency_key=uuid.uuid4().hex,
    )


def test_a_committed_refund_is_told_to_risk_and_a_refused_one_is_not(
    till, pos, supervisor, merchant
):
    paid = till(payer_with(1_000_00), 40_00)
    assert _refund(pos, supervisor, paid.id, 15_00).status_code == 201
    too_much = _refund(pos, supervisor, paid.id, 25_01)
    assert too_much.status_code == 422  # refund_exceeds_remaining: rolled back
    signals = list(RefundSignal.objects.values_list("merchant_id", "amount"))
    assert signals == [(merchant.pk, 15_00)]


def test_refunds_through_the_api_trip_the_refund_ratio_detector(till, pos, supervisor, merchant):
    payments = [till(payer_with(1_000_00), 100_00) for _ in range(5)]
    for paid in payments[:4]:
        assert _refund(pos, supervisor, paid.id, 100_00).status_code == 201
    later = RefundSignal.objects.latest("occurred_at").occurred_at + timedelta(minutes=5)
    assert detect_refund_ratio(now=later) == []  # four refunds: under the minimum count
    assert _refund(pos, supervisor, payments[4].id, 50_00).status_code == 201
    found = detect_refund_ratio(now=later)
    assert [f["kind"] for f in found] == ["refund_ratio_spike"]
    alert = Alert.objects.get(kind="refund_ratio_spike")
    assert alert.merchant_id == merchant.pk
    assert alert.detail["ratio_pct"] == 90.0  # ¥450 of ¥500 refunded

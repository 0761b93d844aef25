"""Helpers that drive the signed payment API like a POS terminal does."""

from __future__ import annotations

import uuid

from apps.accounts.models import Membership, Payer
from apps.accounts.services import operator_pin_set, payment_password_set
from apps.transactions.services import payment_code_issue
from tests.accounts.factories import MembershipFactory

PIN = "135790"
PAYMENT_PASSWORD = "802461"


def staff_with_pin(merchant, role: str) -> Membership:
    membership = MembershipFactory(merchant=merchant, role=role)
    operator_pin_set(membership=membership, pin=PIN, actor=membership.user)
    return membership


def with_payment_password(payer: Payer) -> Payer:
    payment_password_set(payer=payer, password=PAYMENT_PASSWORD, otp_verified=True)
    return payer


def pay(pos, payer: Payer, operator: Membership, amount: int, *, key: str | None = None, **extra):
    """POST /payments with a fresh payment code of `payer`; returns the response."""
    body = {
        "amount": amount,
        "currency": "CNY",
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
        "latitude": "31.230400",
        "longitude": "121.473700",
        **extra,
    }
    return pos.post("/api/v1/terminal/payments", body, idempotency_key=key or uuid.uuid4().hex)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def risk_exempt(payer: Payer, rules: tuple[str, ...] = ("*",)) -> Payer:
    """An allow-list entry so that many quick payments of one payer do not
    trip velocity rules where risk is not what a test is about."""
    from apps.risk.services import risk_list_entry_add

    risk_list_entry_add(
        kind="allow",
        subject_type="payer",
        subject_id=payer.pk,
        reason="test: risk is not under test here",
        actor="test",
        skip_rules=list(rules),
    )
    return payer

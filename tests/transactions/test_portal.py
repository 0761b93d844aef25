"""The merchant portal's transaction pages: list (keyset, filters, pinned
query count), detail, refund with OTP step-up, statements and CSV,
withdrawal; another merchant's payment is a 404."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.terminals.services import terminal_register
from apps.transactions.models import Payment, PaymentStatus, Refund
from apps.transactions.services import payment_code_issue, payment_create, request_hash
from tests.accounts.factories import MembershipFactory, ShopFactory
from tests.accounts.helpers import otp_force_login
from tests.transactions.factories import balance_of, funded_payer
from tests.transactions.pos import risk_exempt, staff_with_pin

pytestmark = pytest.mark.django_db


@pytest.fixture
def terminal(merchant, owner):
    shop = ShopFactory(merchant=merchant, latitude="31.230400", longitude="121.473700")
    terminal, _code = terminal_register(
        merchant=merchant,
        shop=shop,
        serial_number="SN-P",
        model="P2",
        bind_radius_m=300,
        actor=owner,
    )
    return terminal


@pytest.fixture
def paid(terminal, merchant):
    """make(amount) → a completed Payment, through the payment service."""
    operator = staff_with_pin(merchant, "cashier")
    payer = risk_exempt(funded_payer(10_000_00, user__display_name="张三丰"))

    def make(amount: int) -> Payment:
        key = uuid.uuid4().hex
        answer = payment_create(
            terminal=terminal,
            idempotency_key=key,
            digest=request_hash("POST", "/p", {"k": key}),
            amount=amount,
            currency="CNY",
            payment_code=payment_code_issue(payer=payer).code,
            operator_id=str(operator.public_id),
        )
        assert answer.body["status"] == "completed", answer.body
        return Payment.objects.get(public_id=answer.body["id"])

    return make


def test_the_list_pages_by_keyset_with_a_fixed_number_of_queries(client, owner, paid):
    for amount in range(1_00, 8_00, 1_00):
        paid(amount)
    otp_force_login(client, owner)
    url = reverse("portal:transaction-list")
    client.get(url)  # warm caches (sessions, config)
    with CaptureQueriesContext(connection) as small:
        first = client.get(url)
    assert first.status_code == 200
    content = first.content.decode()
    assert "张*" in content
    assert "张三丰" not in content
    for amount in range(8_00, 20_00, 1_00):
        paid(amount)
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    assert len(large) == len(small)
    sql = " ".join(q["sql"] for q in large.captured_queries).upper()
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql


def test_keyset_pages_cover_every_payment_once(client, owner, paid, monkeypatch):
    from apps.portal import transaction_views

    monkeypatch.setattr(transaction_views, "PAGE_SIZE", 3)
    made = {str(paid(a).public_id) for a in range(1_00, 9_00, 1_00)}
    otp_force_login(client, owner)
    seen, url = [], reverse("portal:transaction-list") + "?status=completed"
    while url:
        response = client.get(url)
        seen += [str(p.public_id) for p, _payer in response.context["rows"]]
        url = f"?{response.context['next_query']}" if response.context["next_query"] else None
        url = reverse("portal:transaction-list") + url if url else None
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(made)


def test_the_amount_filter_keeps_the_matching_payments(client, owner, paid):
    paid(5_00)
    big = paid(50_00)
    otp_force_login(client, owner)
    response = client.get(reverse("portal:transaction-list") + "?amount_min=10")
    assert [p.pk for p, _ in response.context["rows"]] == [big.pk]


def test_the_detail_shows_the_postings_and_the_risk_decision(client, owner, paid):
    payment = paid(12_34)
    otp_force_login(client, owner)
    response = client.get(reverse("portal:transaction-detail", args=[payment.public_id]))
    assert response.status_code == 200
    assert len(response.context["entries"]) == 1
    assert response.context["decision"] is not None


def test_another_merchants_payment_is_a_404_in_the_portal(client, paid, outsider):
    payment = paid(1_00)
    otp_force_login(client, outsider)
    assert (
        client.get(reverse("portal:transaction-detail", args=[payment.public_id])).status_code
        == 404
    )
    assert (
        client.get(reverse("portal:transaction-refund", args=[payment.public_id])).status_code
        == 404
    )
    response = client.post(
        reverse("portal:transaction-refund", args=[payment.public_id]),
        {"amount": "1.00", "reason": "x", "form_key": "k"},
    )
    assert response.status_code == 404
    assert not Refund.objects.exists()


def test_a_portal_refund_needs_a_fresh_otp_step_up(client, owner, paid):
    payment = paid(20_00)
    otp_force_login(client, owner, step_up=False)
    url = reverse("portal:transaction-refund", args=[payment.public_id])
    response = client.post(url, {"amount": "5.00", "reason": "broken cup", "form_key": "f1"})
    assert response.status_code == 302
    assert "otp" in response["Location"]
    assert not Refund.objects.exists()


def test_a_manager_refunds_from_the_portal_once_per_form(client, merchant, paid):
    manager = MembershipFactory(merchant=merchant, role="manager").user
    payment = paid(20_00)
    otp_force_login(client, manager)
    url = reverse("portal:transaction-refund", args=[payment.public_id])
    data = {"amount": "5.00", "reason": "broken cup", "form_key": "f1"}
    assert client.post(url, data).status_code == 302
    again = client.post(url, data)
    assert again.status_code == 200
    assert again.context["form"].errors
    too_much = client.post(url, {**data, "form_key": "f2", "amount": "15.01"})
    assert "amount" in too_much.context["form"].errors
    payment.refresh_from_db()
    assert payment.refunded_amount == 5_00
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED


def test_a_cashier_cannot_refund_from_the_portal(client, cashier, paid):
    payment = paid(20_00)
    otp_force_login(client, cashier)
    url = reverse("portal:transaction-refund", args=[payment.public_id])
    assert client.post(url, {"amount": "5.00", "reason": "x", "form_key": "f"}).status_code == 403


def test_statements_and_their_csv_add_up(client, owner, paid, merchant):
    payment = paid(100_00)
    paid(50_00)
    otp_force_login(client, owner)
    from apps.transactions.services import payment_refund_by_user

    payment_refund_by_user(
        payment=payment,
        amount=40_00,
        reason="partial",
        membership=owner.memberships.get(merchant=merchant),
        form_key="r1",
    )
    response = client.get(reverse("portal:statements"))
    (day,) = response.context["days"]
    assert day.gross == 150_00
    assert day.refunds == 40_00
    assert day.payments == 2
    assert day.net == balance_of(merchant=merchant)
    csv_response = client.get(reverse("portal:statement-csv"))
    assert csv_response.streaming
    lines = b"".join(csv_response.streaming_content).decode().splitlines()
    assert lines[0].startswith("date,currency,payments,gross")
    assert lines[1].split(",")[3] == "150.00"


def test_the_owner_withdraws_settlement_balance_with_step_up(client, owner, paid, merchant):
    paid(100_00)
    before = balance_of(merchant=merchant)
    otp_force_login(client, owner)
    url = reverse("portal:withdraw")
    data = {"amount": "50.00", "form_key": "w1"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 200  # the same form twice pays once
    too_much = client.post(url, {"amount": "1000.00", "form_key": "w2"})
    assert "amount" in too_much.context["form"].errors
    assert balance_of(merchant=merchant) == before - 50_00


def test_a_manager_cannot_withdraw(client, merchant):
    manager = MembershipFactory(merchant=merchant, role="manager").user
    otp_force_login(client, manager)
    assert client.get(reverse("portal:withdraw")).status_code == 403

import pytest
from django.urls import reverse

from apps.audit.models import AuditRecord
from apps.core.money import Money
from apps.transactions.models import JournalEntry
from apps.transactions.selectors import ledger_balance_for_payer
from apps.transactions.services import ledger_account_for_payer, ledger_payment_transfer
from tests.accounts.factories import PayerFactory
from tests.accounts.helpers import otp_force_login
from tests.transactions.factories import funded_payer

pytestmark = pytest.mark.django_db


def test_compliance_posts_a_top_up_with_a_reason_from_the_admin(staff_client, compliance):
    payer = PayerFactory()

    response = staff_client.post(
        reverse("admin:transactions_ledgeraccount_top_up"),
        {
            "payer": str(payer.public_id),
            "amount": "123.45",
            "currency": "CNY",
            "reason": "bank transfer ref 889",
        },
    )

    assert response.status_code == 302
    assert ledger_balance_for_payer(payer=payer) == Money(123_45)
    entry = JournalEntry.objects.get(kind="top_up")
    assert entry.memo == "bank transfer ref 889"
    record = AuditRecord.objects.get(action="ledger.wallet_top_up")
    assert record.actor_id == str(compliance.public_id)


def test_a_top_up_without_a_reason_is_refused_beside_the_field(staff_client):
    payer = PayerFactory()

    response = staff_client.post(
        reverse("admin:transactions_ledgeraccount_top_up"),
        {"payer": str(payer.public_id), "amount": "10.00", "currency": "CNY", "reason": " "},
    )

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert ledger_balance_for_payer(payer=payer).amount == 0


def test_the_ledger_browser_shows_entries_with_postings_but_offers_no_change(
    staff_client, merchant
):
    payer = funded_payer(50_00)
    entry = ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(10_00), event=("test.payment", "adm")
    )
    wallet = ledger_account_for_payer(payer=payer)

    assert (
        staff_client.get(reverse("admin:transactions_ledgeraccount_changelist")).status_code == 200
    )
    assert (
        staff_client.get(
            reverse("admin:transactions_ledgeraccount_change", args=[wallet.pk])
        ).status_code
        == 200
    )
    detail = staff_client.get(reverse("admin:transactions_journalentry_change", args=[entry.pk]))
    assert detail.status_code == 200
    assert "-1000" in detail.content.decode()
    assert staff_client.get(reverse("admin:transactions_journalentry_add")).status_code == 403
    assert (
        staff_client.post(
            reverse("admin:transactions_journalentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert JournalEntry.objects.filter(pk=entry.pk).exists()


def test_a_merchant_user_cannot_reach_the_top_up_form(client, owner):
    client.force_login(owner)

    response = client.get(reverse("admin:transactions_ledgeraccount_top_up"))

    assert response.status_code in (302, 403)


def test_the_demo_seeder_funds_verified_wallets_once():
    import io

    from apps.accounts.models import Payer
    from apps.transactions.demo import DEMO_FUNDING, demo_wallets_seed

    verified, unverified = PayerFactory(), PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)

    demo_wallets_seed(io.StringIO())
    demo_wallets_seed(io.StringIO())

    assert ledger_balance_for_payer(payer=verified) == DEMO_FUNDING
    assert ledger_balance_for_payer(payer=unverified).amount == 0


def test_compliance_finds_a_payment_of_any_merchant_in_the_admin(client, compliance):
    from apps.terminals.services import terminal_register
    from apps.transactions.models import Payment
    from apps.transactions.services import payment_code_issue, payment_create
    from tests.accounts.factories import MembershipFactory, ShopFactory
    from tests.transactions.factories import funded_payer
    from tests.transactions.pos import staff_with_pin

    shop = ShopFactory()
    owner = MembershipFactory(merchant=shop.merchant, role="owner").user
    terminal, _code = terminal_register(
        merchant=shop.merchant,
        shop=shop,
        serial_number="SN-A",
        model="",
        bind_radius_m=300,
        actor=owner,
    )
    payer = funded_payer(10_00)
    answer = payment_create(
        terminal=terminal,
        idempotency_key="adm-1",
        digest="d",
        amount=1_00,
        currency="CNY",
        payment_code=payment_code_issue(payer=payer).code,
        operator_id=str(staff_with_pin(shop.merchant, "cashier").public_id),
    )
    otp_force_login(client, compliance)
    response = client.get(
        reverse("admin:transactions_payment_changelist"), {"q": answer.body["id"]}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [Payment.objects.get()]
    detail = client.get(
        reverse("admin:transactions_payment_change", args=[Payment.objects.get().pk])
    )
    assert detail.status_code == 200

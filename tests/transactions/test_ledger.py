import pytest

from apps.audit.models import AuditRecord
from apps.core.money import Money
from apps.transactions.errors import (
    AccountFrozen,
    CorrectionRefused,
    DuplicateLedgerEvent,
    InsufficientFunds,
    UnbalancedEntry,
)
from apps.transactions.models import AccountKind, EntryKind, JournalEntry, Posting
from apps.transactions.selectors import (
    ledger_balance_for_merchant,
    ledger_balance_for_payer,
    ledger_entries_for_event,
    ledger_history_for_merchant,
    ledger_history_for_payer,
    ledger_integrity_problems,
)
from apps.transactions.services import (
    ledger_account_for_merchant,
    ledger_account_for_payer,
    ledger_account_freeze,
    ledger_hold_place,
    ledger_hold_release,
    ledger_hold_return,
    ledger_payment_transfer,
    ledger_platform_account,
    ledger_post,
    ledger_refund,
    ledger_reverse,
    merchant_withdraw,
    wallet_top_up,
)
from tests.transactions.factories import (
    CLEARING,
    FEE,
    HOLD,
    balance_of,
    funded_payer,
    platform_balance,
)

pytestmark = pytest.mark.django_db


def pay(payer, merchant, fen, event_id):
    return ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(fen), event=("test.payment", event_id)
    )


def test_a_top_up_moves_money_from_external_clearing_to_the_wallet_and_is_audited(compliance):
    payer = funded_payer(0)
    entry = wallet_top_up(
        payer=payer, amount=Money(50_00), reason="bank transfer 123", actor=compliance
    )

    assert ledger_balance_for_payer(payer=payer) == Money(50_00)
    assert platform_balance(CLEARING) == -50_00
    assert entry.kind == EntryKind.TOP_UP
    assert entry.memo == "bank transfer 123"
    record = AuditRecord.objects.get(action="ledger.wallet_top_up")
    assert record.target_id == str(entry.public_id)
    assert record.data["reason"] == "bank transfer 123"
    assert ledger_integrity_problems() == []


def test_a_payment_pays_the_merchant_minus_its_discount_rate_to_fee_revenue(merchant):
    payer = funded_payer(200_00)
    merchant.discount_rate_bp = 38
    merchant.save()

    entry = pay(payer, merchant, 12_345, "p1")

    fee = Money(12_345).fee(38).amount  # 46.911 fen, rounded half up
    assert fee == 47
    assert ledger_balance_for_payer(payer=payer).amount == 200_00 - 12_345
    assert ledger_balance_for_merchant(merchant=merchant).amount == 12_345 - fee
    assert platform_balance(FEE) == fee
    assert sorted(entry.postings.values_list("amount", flat=True)) == sorted(
        [-12_345, 12_345 - fee, fee]
    )
    assert entry.merchant == merchant
    assert (entry.event_type, entry.event_id) == ("test.payment", "p1")
    assert list(ledger_entries_for_event(event_type="test.payment", event_id="p1")) == [entry]


def test_a_payment_larger_than_the_wallet_is_refused_and_writes_nothing(merchant):
    payer = funded_payer(10_00)
    entries_before = JournalEntry.objects.count()

    with pytest.raises(InsufficientFunds):
        pay(payer, merchant, 10_01, "too-much")

    assert JournalEntry.objects.count() == entries_before
    assert ledger_balance_for_payer(payer=payer).amount == 10_00
    assert ledger_balance_for_merchant(merchant=merchant).amount == 0
    assert ledger_integrity_problems() == []


def test_the_same_business_event_cannot_move_money_twice(merchant):
    payer = funded_payer(100_00)
    pay(payer, merchant, 10_00, "once")

    with pytest.raises(DuplicateLedgerEvent):
        pay(payer, merchant, 10_00, "once")

    assert ledger_balance_for_payer(payer=payer).amount == 90_00


def test_the_same_idempotency_key_cannot_top_up_twice():
    payer = funded_payer(0)
    wallet_top_up(
        payer=payer, amount=Money(5_00), reason="bank ref A", actor="test", idempotency_key="k-1"
    )

    with pytest.raises(DuplicateLedgerEvent):
        wallet_top_up(
            payer=payer,
            amount=Money(5_00),
            reason="bank ref A",
            actor="test",
            idempotency_key="k-1",
        )

    assert ledger_balance_for_payer(payer=payer).amount == 5_00


def test_ledger_post_refuses_lines_that_do_not_balance(merchant):
    payer = funded_payer(10_00)
    wallet = ledger_account_for_payer(payer=payer)
    settlement = ledger_account_for_merchant(merchant=merchant)

    with pytest.raises(UnbalancedEntry):
        ledger_post(kind=EntryKind.PAYMENT, lines=[(wallet, -100), (settlement, 99)])
    with pytest.raises(UnbalancedEntry):
        ledger_post(kind=EntryKind.PAYMENT, lines=[(wallet, -100)])
    with pytest.raises(UnbalancedEntry):
        ledger_post(kind=EntryKind.PAYMENT, lines=[(wallet, -100), (wallet, 100)])
    assert ledger_integrity_problems() == []


def test_accounts_are_created_once_per_owner_and_currency(merchant):
    payer = funded_payer(0)
    assert ledger_account_for_payer(payer=payer) == ledger_account_for_payer(payer=payer)
    assert ledger_account_for_merchant(merchant=merchant) == ledger_account_for_merchant(
        merchant=merchant
    )
    assert ledger_platform_account(kind=FEE) == ledger_platform_account(kind=FEE)
    with pytest.raises(ValueError, match="platform"):
        ledger_platform_account(kind=AccountKind.PAYER_WALLET)


def test_a_frozen_wallet_refuses_debits_but_still_receives_credits(merchant, compliance):
    payer = funded_payer(20_00)
    wallet = ledger_account_for_payer(payer=payer)
    ledger_account_freeze(account=wallet, frozen=True, reason="suspicious swings", actor=compliance)

    with pytest.raises(AccountFrozen):
        pay(payer, merchant, 1_00, "frozen")
    wallet_top_up(payer=payer, amount=Money(1_00), reason="bank ref", actor=compliance)

    assert ledger_balance_for_payer(payer=payer).amount == 21_00
    assert AuditRecord.objects.filter(action="ledger.account_frozen").count() == 1


def test_a_merchant_withdraws_its_settlement_balance_but_never_more(merchant, owner):
    payer = funded_payer(100_00)
    merchant.discount_rate_bp = 0
    merchant.save()
    pay(payer, merchant, 60_00, "w1")

    merchant_withdraw(merchant=merchant, amount=Money(50_00), actor=owner)
    with pytest.raises(InsufficientFunds):
        merchant_withdraw(merchant=merchant, amount=Money(10_01), actor=owner)

    assert ledger_balance_for_merchant(merchant=merchant).amount == 10_00
    assert (
        AuditRecord.objects.filter(
            action="ledger.merchant_withdraw", merchant_id=str(merchant.public_id)
        ).count()
        == 1
    )
    assert ledger_integrity_problems() == []


def test_partial_refunds_give_back_the_fee_in_proportion_and_the_whole_fee_in_the_end(merchant):
    payer = funded_payer(200_00)
    merchant.discount_rate_bp = 38
    merchant.save()
    payment = pay(payer, merchant, 10_001, "r1")
    fee = Money(10_001).fee(38).amount

    refunds = [
        ledger_refund(original=payment, amount=Money(part), event=("test.refund", f"r1-{i}"))
        for i, part in enumerate([3_333, 3_333, 3_335])
    ]

    fee_back = -sum(
        Posting.objects.filter(entry__in=refunds, account__kind=FEE).values_list(
            "amount", flat=True
        )
    )
    assert fee_back == fee
    assert platform_balance(FEE) == 0
    assert ledger_balance_for_payer(payer=payer).amount == 200_00
    assert ledger_balance_for_merchant(merchant=merchant).amount == 0
    assert ledger_integrity_problems() == []


def test_a_refund_never_exceeds_what_is_left_of_the_payment(merchant):
    payer = funded_payer(100_00)
    payment = pay(payer, merchant, 10_00, "r2")
    ledger_refund(original=payment, amount=Money(6_00), event=("test.refund", "a"))

    with pytest.raises(CorrectionRefused) as refused:
        ledger_refund(original=payment, amount=Money(4_01), event=("test.refund", "b"))

    assert refused.value.code == "refund_exceeds_remaining"
    ledger_refund(original=payment, amount=Money(4_00), event=("test.refund", "c"))
    assert ledger_balance_for_payer(payer=payer).amount == 100_00


def test_a_held_payment_is_released_to_the_merchant_once(merchant):
    payer = funded_payer(50_00)
    hold = ledger_hold_place(
        payer=payer, merchant=merchant, amount=Money(20_00), event=("test.payment", "h1")
    )
    assert platform_balance(HOLD) == 20_00
    assert ledger_balance_for_payer(payer=payer).amount == 30_00

    ledger_hold_release(hold_entry=hold)
    with pytest.raises(CorrectionRefused):
        ledger_hold_return(hold_entry=hold)

    fee = Money(20_00).fee(merchant.discount_rate_bp).amount
    assert platform_balance(HOLD) == 0
    assert ledger_balance_for_merchant(merchant=merchant).amount == 20_00 - fee
    assert ledger_balance_for_payer(payer=payer).amount == 30_00
    assert ledger_integrity_problems() == []


def test_a_released_hold_can_be_refunded_to_the_payer(merchant):
    payer = funded_payer(50_00)
    hold = ledger_hold_place(
        payer=payer, merchant=merchant, amount=Money(20_00), event=("test.payment", "h3")
    )
    release = ledger_hold_release(hold_entry=hold)

    ledger_refund(original=release, amount=Money(20_00), event=("test.refund", "h3"))

    assert ledger_balance_for_payer(payer=payer).amount == 50_00
    assert ledger_balance_for_merchant(merchant=merchant).amount == 0
    assert platform_balance(FEE) == 0


def test_a_rejected_hold_returns_the_whole_amount_to_the_payer(merchant):
    payer = funded_payer(50_00)
    hold = ledger_hold_place(
        payer=payer, merchant=merchant, amount=Money(20_00), event=("test.payment", "h2")
    )

    ledger_hold_return(hold_entry=hold)
    with pytest.raises(CorrectionRefused):
        ledger_hold_release(hold_entry=hold)

    assert ledger_balance_for_payer(payer=payer).amount == 50_00
    assert platform_balance(HOLD) == 0
    assert ledger_balance_for_merchant(merchant=merchant).amount == 0


def test_a_reversal_is_the_exact_opposite_entry_and_happens_once(merchant):
    payer = funded_payer(50_00)
    payment = pay(payer, merchant, 12_34, "v1")

    reversal = ledger_reverse(original=payment, memo="terminal never got the answer")
    with pytest.raises(CorrectionRefused):
        ledger_reverse(original=payment)

    original_lines = {(p.account_id, p.amount) for p in payment.postings.all()}
    reversal_lines = {(p.account_id, -p.amount) for p in reversal.postings.all()}
    assert original_lines == reversal_lines
    assert reversal.original == payment
    assert ledger_balance_for_payer(payer=payer).amount == 50_00
    assert platform_balance(FEE) == 0
    assert ledger_integrity_problems() == []


def test_a_refunded_payment_cannot_be_reversed_nor_a_reversed_one_refunded(merchant):
    payer = funded_payer(50_00)
    refunded = pay(payer, merchant, 10_00, "v2")
    ledger_refund(original=refunded, amount=Money(1_00), event=("test.refund", "v2"))
    reversed_ = pay(payer, merchant, 10_00, "v3")
    ledger_reverse(original=reversed_)

    with pytest.raises(CorrectionRefused):
        ledger_reverse(original=refunded)
    with pytest.raises(CorrectionRefused):
        ledger_refund(original=reversed_, amount=Money(1_00), event=("test.refund", "v3"))


def test_a_reversal_cannot_overdraw_a_merchant_that_already_withdrew(merchant, owner):
    payer = funded_payer(50_00)
    payment = pay(payer, merchant, 10_00, "v4")
    merchant_withdraw(
        merchant=merchant, amount=ledger_balance_for_merchant(merchant=merchant), actor=owner
    )

    with pytest.raises(InsufficientFunds):
        ledger_reverse(original=payment)
    assert ledger_integrity_problems() == []


def test_histories_list_postings_newest_first_with_keyset_pages(merchant):
    payer = funded_payer(100_00)
    for i in range(5):
        pay(payer, merchant, 1_00 + i, f"hist-{i}")

    first = ledger_history_for_payer(payer=payer, limit=3)
    rest = ledger_history_for_payer(payer=payer, before_id=first[-1].id, limit=3)
    merchant_history = ledger_history_for_merchant(merchant=merchant)

    assert [p.amount for p in first + rest] == [-1_04, -1_03, -1_02, -1_01, -1_00, 100_00]
    assert [p.entry.event_id for p in merchant_history] == [f"hist-{i}" for i in reversed(range(5))]


def test_the_integrity_check_finds_a_tampered_balance_and_an_unbalanced_entry(merchant):
    payer = funded_payer(10_00)
    payment = pay(payer, merchant, 1_00, "t1")
    wallet = ledger_account_for_payer(payer=payer)
    # Tampering behind the services' back (a raw write, as an attacker or a bug would).
    type(wallet).objects.filter(pk=wallet.pk).update(balance=1_000_00)
    Posting.objects.create(entry=payment, account=wallet, amount=5)

    problems = ledger_integrity_problems()

    assert f"entry {payment.public_id} does not balance (off by 5)" in problems
    assert any(f"account {wallet.public_id} (payer_wallet) caches 100000" in p for p in problems)
    assert any("does not sum to zero" in p for p in problems)


def test_the_integrity_check_finds_a_negative_customer_balance(merchant):
    payer = funded_payer(10_00)
    wallet = ledger_account_for_payer(payer=payer)
    hold = ledger_platform_account(kind=HOLD)
    # Only risk hold can hold a negative number in the database; it must not.
    ledger_post(kind=EntryKind.HOLD, lines=[(hold, -5), (wallet, 5)])

    problems = ledger_integrity_problems()

    assert problems == [f"account {hold.public_id} (risk_hold) is negative: -5"]
    assert balance_of(pk=wallet.pk) == 10_05

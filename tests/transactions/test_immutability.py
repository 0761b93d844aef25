import pytest
from django.db import DatabaseError, connection, transaction

from apps.core.money import Money
from apps.transactions.models import JournalEntry, Posting
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import ledger_payment_transfer
from tests.transactions.factories import funded_payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(merchant):
    payer = funded_payer(10_00)
    return ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(10_00), event=("test.payment", "imm")
    )


def test_a_journal_entry_refuses_to_be_saved_again_or_deleted(payment):
    payment.memo = "rewritten"
    with pytest.raises(RuntimeError, match="immutable"):
        payment.save()
    with pytest.raises(RuntimeError, match="immutable"):
        payment.delete()
    assert JournalEntry.objects.get(pk=payment.pk).memo == ""


def test_a_posting_refuses_to_be_saved_again_or_deleted(payment):
    posting = payment.postings.first()
    posting.amount = 1
    with pytest.raises(RuntimeError, match="immutable"):
        posting.save()
    with pytest.raises(RuntimeError, match="immutable"):
        posting.delete()


def test_bulk_updates_and_deletes_of_ledger_rows_are_refused(payment):
    with pytest.raises(RuntimeError, match="immutable"):
        Posting.objects.filter(entry=payment).update(amount=1)
    with pytest.raises(RuntimeError, match="immutable"):
        Posting.objects.filter(entry=payment).delete()
    with pytest.raises(RuntimeError, match="immutable"):
        JournalEntry.objects.filter(pk=payment.pk).update(memo="x")
    with pytest.raises(RuntimeError, match="immutable"):
        JournalEntry.objects.all().delete()
    assert ledger_integrity_problems() == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE transactions_posting SET amount = amount + 1",
        "DELETE FROM transactions_posting",
        "UPDATE transactions_journalentry SET memo = 'rewritten'",
        "DELETE FROM transactions_journalentry",
    ],
)
def test_postgresql_refuses_raw_updates_and_deletes_of_ledger_rows(payment, sql):
    with (
        pytest.raises(DatabaseError, match="immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert ledger_integrity_problems() == []
    assert Posting.objects.filter(entry=payment).count() == 3

"""WriteBatch: independent writes in one round trip (one statement of
data-modifying CTEs on PostgreSQL, one after another elsewhere)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditChainHead, AuditRecord
from apps.audit.services import audit_chain_verify, audit_record
from apps.core.db import WriteBatch
from apps.risk.models import MerchantRiskState, PayerRiskState
from apps.transactions.models import JournalEntry, LedgerAccount, Posting
from tests.accounts.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def _heads():
    for shard in range(8):
        AuditChainHead.objects.get_or_create(shard=shard)


def _merchant_state_sql() -> str:
    table = MerchantRiskState._meta.db_table
    return f"UPDATE {table} SET payments_count = %s WHERE merchant_id = %s"  # noqa: S608


def test_inserts_get_their_keys_and_updates_apply():
    MerchantRiskState.objects.create(merchant_id=7, payments_count=1, payments_sum=100)
    state = PayerRiskState(payer_id=41)
    batch = WriteBatch()
    batch.insert(state)
    batch.raw(_merchant_state_sql(), [5, 7])
    with transaction.atomic():
        batch.execute()
    assert state.pk is not None
    assert not state._state.adding
    assert PayerRiskState.objects.get(pk=state.pk).payer_id == 41
    assert MerchantRiskState.objects.get(merchant_id=7).payments_count == 5


def test_an_insert_may_name_a_row_inserted_earlier_in_the_batch():
    merchant = MerchantFactory()
    entry = JournalEntry(kind="payment", currency="CNY", merchant=merchant)
    account = LedgerAccount.objects.create(kind="fee_revenue", currency="CNY", slot=3)
    batch = WriteBatch()
    batch.insert(entry)
    posting = Posting(entry=entry, account=account, amount=5)
    batch.insert(posting)
    with transaction.atomic():
        batch.execute()
    assert Posting.objects.get(pk=posting.pk).entry_id == entry.pk


def test_an_instance_updates_its_named_fields_only():
    state = PayerRiskState.objects.create(payer_id=77, day_total=3, lifetime_total=9)
    state.day_total, state.lifetime_total = 30, 90
    batch = WriteBatch()
    batch.update(state, ["day_total"])
    with transaction.atomic():
        batch.execute()
    state.refresh_from_db()
    assert (state.day_total, state.lifetime_total) == (30, 9)


@pytest.mark.postgres
def test_on_postgresql_the_writes_are_one_statement():
    _heads()
    batch = WriteBatch()
    with transaction.atomic():
        audit_record(action="test.one", batch=batch)
        batch.insert(PayerRiskState(payer_id=1))
        batch.raw(_merchant_state_sql(), [1, 1])
        with CaptureQueriesContext(connection) as queries:
            batch.execute()
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("WITH w0 AS (INSERT")


def test_a_write_that_changes_nothing_runs_its_fallback_in_the_transaction():
    created = []

    def create() -> None:
        created.append(MerchantRiskState.objects.create(merchant_id=9, payments_count=1))

    batch = WriteBatch()
    batch.raw(_merchant_state_sql(), [1, 9], if_none=create)
    batch.raw(_merchant_state_sql(), [1, 10])
    with transaction.atomic():
        batch.execute()
    assert len(created) == 1
    assert not MerchantRiskState.objects.filter(merchant_id=10).exists()


def test_a_write_that_changes_fewer_rows_than_expected_fails_the_batch():
    MerchantRiskState.objects.create(merchant_id=12)
    batch = WriteBatch()
    batch.insert(PayerRiskState(payer_id=12))

    def refuse(changed: int) -> None:
        raise LookupError(changed)

    batch.raw(_merchant_state_sql(), [1, 13], expect=1, on_mismatch=refuse)
    with pytest.raises(LookupError), transaction.atomic():
        batch.execute()
    assert not PayerRiskState.objects.filter(payer_id=12).exists()


def test_a_later_write_with_the_same_key_replaces_the_earlier():
    MerchantRiskState.objects.create(merchant_id=3)
    batch = WriteBatch()
    batch.raw(_merchant_state_sql(), [1, 3], key="m3")
    batch.raw(_merchant_state_sql(), [2, 3], key="m3")
    assert len(batch) == 1
    with transaction.atomic():
        batch.execute()
    assert MerchantRiskState.objects.get(merchant_id=3).payments_count == 2


def test_one_failing_write_fails_them_all():
    PayerRiskState.objects.create(payer_id=5)
    batch = WriteBatch()
    batch.insert(MerchantRiskState(merchant_id=11))
    batch.insert(PayerRiskState(payer_id=5))  # unique payer_id: refused
    with pytest.raises(IntegrityError), transaction.atomic():
        batch.execute()
    assert not MerchantRiskState.objects.filter(merchant_id=11).exists()


def test_a_batch_runs_once():
    batch = WriteBatch()
    batch.execute()
    with pytest.raises(RuntimeError):
        batch.insert(PayerRiskState(payer_id=1))


def test_several_audit_records_of_one_batch_chain_correctly():
    _heads()
    with transaction.atomic():
        audit_record(action="test.before")
        batch = WriteBatch()
        first = audit_record(action="test.first", batch=batch)
        second = audit_record(action="test.second", batch=batch)
        assert (first.shard, second.seq, second.prev_hash) == (
            second.shard,
            first.seq + 1,
            first.hash,
        )
        batch.execute()
        audit_record(action="test.after")
    assert AuditRecord.objects.count() == 4
    assert audit_chain_verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_batched_audit_record_needs_a_transaction():
    _heads()
    with pytest.raises(RuntimeError):
        audit_record(action="test.alone", batch=WriteBatch())


def test_after_actions_run_once_the_writes_are_done():
    _heads()
    seen = []
    with transaction.atomic():
        batch = WriteBatch()
        audit_record(action="test.batched", batch=batch)
        batch.after(lambda: seen.append(AuditRecord.objects.count()))
        batch.after(lambda: audit_record(action="test.after_batch"))
        batch.execute()
    assert seen == [1]
    assert audit_chain_verify() == []

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

pytestmark = pytest.mark.django_db


def _heads():
    for shard in range(8):
        AuditChainHead.objects.get_or_create(shard=shard)


def test_inserts_get_their_keys_and_updates_apply():
    MerchantRiskState.objects.create(merchant_id=7, payments_count=1, payments_sum=100)
    state = PayerRiskState(payer_id=41)
    batch = WriteBatch()
    batch.insert(state)
    batch.update(MerchantRiskState.objects.filter(merchant_id=7), {"payments_count": 5})
    with transaction.atomic():
        batch.execute()
    assert state.pk is not None
    assert not state._state.adding
    assert PayerRiskState.objects.get(pk=state.pk).payer_id == 41
    assert MerchantRiskState.objects.get(merchant_id=7).payments_count == 5


@pytest.mark.postgres
def test_on_postgresql_the_writes_are_one_statement():
    _heads()
    batch = WriteBatch()
    with transaction.atomic():
        audit_record(action="test.one", batch=batch)
        batch.insert(PayerRiskState(payer_id=1))
        batch.update(MerchantRiskState.objects.filter(merchant_id=1), {"payments_count": 1})
        with CaptureQueriesContext(connection) as queries:
            batch.execute()
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("WITH w0 AS (INSERT")


def test_an_update_that_matches_nothing_runs_its_fallback_in_the_transaction():
    created = []

    def create() -> None:
        created.append(MerchantRiskState.objects.create(merchant_id=9, payments_count=1))

    batch = WriteBatch()
    batch.update(
        MerchantRiskState.objects.filter(merchant_id=9), {"payments_count": 1}, if_none=create
    )
    batch.update(MerchantRiskState.objects.filter(merchant_id=10), {"payments_count": 1})
    with transaction.atomic():
        batch.execute()
    assert len(created) == 1
    assert not MerchantRiskState.objects.filter(merchant_id=10).exists()


def test_a_later_update_with_the_same_key_replaces_the_earlier():
    MerchantRiskState.objects.create(merchant_id=3)
    batch = WriteBatch()
    rows = MerchantRiskState.objects.filter(merchant_id=3)
    batch.update(rows, {"payments_count": 1}, key="m3")
    batch.update(rows, {"payments_count": 2}, key="m3")
    assert len(batch) == 1
    with transaction.atomic():
        batch.execute()
    assert rows.get().payments_count == 2


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

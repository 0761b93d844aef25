"""The audit trail is append-only and its hash chains catch any edit or deletion."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditChainHead, AuditRecord
from apps.audit.services import audit_chain_verify, audit_record, security_event_record


def _tamper(sql: str, params: list) -> None:
    """What an attacker with database access would do: on PostgreSQL that
    means switching off the append-only trigger first."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditrecord DISABLE TRIGGER audit_record_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditrecord ENABLE TRIGGER audit_record_append_only")


@pytest.fixture
def trail(merchant, owner):
    return [
        audit_record(action="test.action", actor=owner, merchant=merchant, data={"n": n})
        for n in range(40)
    ]


def test_an_untouched_trail_verifies(trail):
    assert audit_chain_verify() == []
    call_command("verify_audit_chain")


def test_it_detects_an_edited_record(trail):
    victim = trail[7]
    _tamper("UPDATE audit_auditrecord SET data = %s WHERE id = %s", ['{"n": 999}', victim.pk])
    problems = audit_chain_verify()
    assert any(
        p.shard == victim.shard and p.seq == victim.seq and "altered" in p.problem for p in problems
    )
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("verify_audit_chain")


def test_it_detects_a_deleted_record(trail):
    shard = trail[0].shard
    in_shard = AuditRecord.objects.filter(shard=shard).order_by("seq")
    if in_shard.count() < 3:
        pytest.skip("shard too short in this draw")
    middle = in_shard[1]
    _tamper("DELETE FROM audit_auditrecord WHERE id = %s", [middle.pk])
    problems = audit_chain_verify()
    assert any(p.shard == shard and "missing" in p.problem for p in problems)


def test_it_detects_the_newest_records_deleted(trail):
    newest = AuditRecord.objects.order_by("-id").first()
    _tamper("DELETE FROM audit_auditrecord WHERE id = %s", [newest.pk])
    problems = audit_chain_verify()
    assert any(p.shard == newest.shard and "head says" in p.problem for p in problems)


def test_the_model_refuses_to_update_or_delete(trail):
    record = trail[0]
    record.action = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        record.save()
    with pytest.raises(RuntimeError, match="append-only"):
        record.delete()


@pytest.mark.postgres
def test_the_database_refuses_to_update_or_delete_audit_records(trail):
    for sql in ("UPDATE audit_auditrecord SET action = 'x'", "DELETE FROM audit_auditrecord"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditRecord.objects.count() == 40


def test_security_events_are_also_audited(merchant):
    event = security_event_record(
        kind="login_failed", merchant=merchant, data={"email": "x@y.test"}
    )
    assert AuditRecord.objects.filter(
        action="security.login_failed", merchant_id=str(merchant.public_id)
    ).exists()
    assert event.kind == "login_failed"


@pytest.mark.postgres
def test_concurrent_writers_keep_every_chain_intact(transactional_db):
    errors: list[Exception] = []

    def write(worker: int) -> None:
        try:
            for n in range(25):
                audit_record(action="test.concurrent", data={"worker": worker, "n": n})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditRecord.objects.filter(action="test.concurrent").count() == 200
    assert audit_chain_verify() == []
    assert sum(h.seq for h in AuditChainHead.objects.all()) == AuditRecord.objects.count()


@pytest.mark.postgres
def test_transactions_writing_several_records_do_not_deadlock(transactional_db):
    errors: list[Exception] = []

    def write(worker: int) -> None:
        try:
            for n in range(10):
                with transaction.atomic():
                    for part in range(3):
                        audit_record(
                            action="test.multi", data={"worker": worker, "n": n, "part": part}
                        )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditRecord.objects.filter(action="test.multi").count() == 240
    assert audit_chain_verify() == []


def test_a_flushed_database_gets_its_chain_heads_back(db):
    AuditChainHead.objects.all().delete()
    assert audit_chain_verify() == []  # an empty trail holds
    audit_record(action="test.after_flush")
    assert AuditChainHead.objects.count() == 8
    assert audit_chain_verify() == []


def test_a_missing_head_beside_records_is_a_problem(trail):
    shard = trail[0].shard
    AuditChainHead.objects.filter(shard=shard).delete()
    assert any(p.shard == shard and "head missing" in p.problem for p in audit_chain_verify())


@pytest.mark.postgres
def test_a_writer_takes_a_free_chain_head_instead_of_waiting(transactional_db):
    """While one transaction holds a chain head (until its COMMIT), another
    writer appends to a different head at once; in its own transaction a
    writer keeps to the head it holds."""
    for shard in range(8):
        AuditChainHead.objects.get_or_create(shard=shard)
    held, done = threading.Event(), threading.Event()
    release = threading.Event()
    shards: dict[str, int] = {}

    def holder() -> None:
        try:
            with transaction.atomic():
                shards["holder"] = audit_record(action="test.holder").shard
                shards["holder_again"] = audit_record(action="test.holder").shard
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    # This connection's preferred head is the holder's: it must not wait.
    connection._anfu_audit_shard = shards["holder"]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
        shards["other"] = audit_record(action="test.other").shard
    done.set()
    release.set()
    thread.join()
    assert shards["holder"] == shards["holder_again"]
    assert shards["other"] != shards["holder"]
    assert audit_chain_verify() == []

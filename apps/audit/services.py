"""Writes to the audit trail. Call these inside the business action's own
transaction, so an action and its audit record commit or vanish together."""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.models import (
    AUDIT_CHAIN_SHARDS,
    GENESIS_HASH,
    AuditChainHead,
    AuditRecord,
    SecurityEvent,
)
from apps.core.context import request_id_var
from apps.core.db import WriteBatch, fetch_one, reader

logger = logging.getLogger("anfu.security")
_HEAD_TABLE = AuditChainHead._meta.db_table


def _actor_fields(actor: Any) -> tuple[str, str]:
    if actor is None:
        return "system", "system"
    if isinstance(actor, str):
        return actor[:64], actor[:200]
    public_id = getattr(actor, "public_id", None) or getattr(actor, "pk", "")
    return str(public_id), str(getattr(actor, "email", None) or actor)[:200]


def _merchant_ref(merchant: Any) -> str:
    if merchant is None:
        return ""
    return str(getattr(merchant, "public_id", merchant))


def _request_ip(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    from apps.core.ratelimit import client_ip

    return client_ip(request)[:45]


# The shard this thread's connection appended to last (Django's connections
# are per thread): see _locked_head.
_last_shard = threading.local()


def _locked_head() -> AuditChainHead:
    """Locks the chain head this transaction appends to. Concurrent writers
    must not queue on one head (it stays locked until their COMMIT), and a
    transaction writing several records must hold a single head, or two of
    them could deadlock. So: the head this connection used last if no other
    transaction holds it (in the same transaction it is ours, and our own
    lock is never skipped), else any head nobody holds (SKIP LOCKED: never
    waits), and only when another transaction holds every head, wait for
    the preferred one."""
    conn = transaction.get_connection()
    preferred = getattr(_last_shard, "shard", None)
    if preferred is None:
        preferred = secrets.randbelow(AUDIT_CHAIN_SHARDS)
    head = None
    if conn.features.has_select_for_update_skip_locked:
        # The preferred shard first, then its neighbours.
        heads = reader(AuditChainHead, "h")
        row = fetch_one(
            f"SELECT {heads.columns} FROM {heads.table} h "  # noqa: S608 (our table)
            "ORDER BY (h.shard + %s) %% %s LIMIT 1 FOR UPDATE SKIP LOCKED",
            [AUDIT_CHAIN_SHARDS - preferred, AUDIT_CHAIN_SHARDS],
        )
        head = heads.read(row) if row is not None else None
    if head is None:
        head = AuditChainHead.objects.select_for_update().filter(shard=preferred).first()
    if head is None:
        # The heads come with migration 0002; a flushed database (tests,
        # a restore into an empty schema) recreates all of them at once.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(shard=s) for s in range(AUDIT_CHAIN_SHARDS)], ignore_conflicts=True
        )
        head = AuditChainHead.objects.select_for_update().get(shard=preferred)
    _last_shard.shard = head.shard
    return head  # type: ignore[return-value]


def audit_record(
    *,
    action: str,
    actor: Any = None,
    merchant: Any = None,
    target: Model | None = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
    batch: WriteBatch | None = None,
) -> AuditRecord:
    """Appends a record to this connection's chain. With `batch`, the chain
    head is locked now and the record and the new head are written when the
    caller executes the batch (in the same transaction), with its other
    writes in one round trip; several records of one batch chain correctly.
    Until the batch has executed, this connection must write no record
    outside it (put such work in `batch.after`): it would read the head the
    batch has yet to move, and the chain's unique (shard, seq) refuses it."""
    actor_id, actor_label = _actor_fields(actor)
    if batch is not None and not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a batched audit record needs the caller's transaction")
    # savepoint=False: inside a business action's transaction the record
    # commits or vanishes with the action anyway, and a savepoint would cost
    # two extra round trips on every audited write.
    with transaction.atomic(savepoint=False):
        memo_key = "audit_head"
        head = batch.memo.get(memo_key) if batch is not None else None
        if head is None:
            head = _locked_head()
        shard = head.shard
        record = AuditRecord(
            shard=head.shard,
            seq=head.seq + 1,
            created_at=timezone.now(),
            action=action,
            actor_id=actor_id,
            actor_label=actor_label,
            merchant_id=_merchant_ref(merchant),
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(getattr(target, "public_id", None) or getattr(target, "pk", ""))
            if target is not None
            else "",
            data=data or {},
            ip=_request_ip(request),
            request_id=(getattr(request, "request_id", None) or request_id_var.get() or "")[:64],
            prev_hash=head.hash,
        )
        record.hash = record.compute_hash()
        head.seq, head.hash = record.seq, record.hash
        if batch is None:
            record.save(force_insert=True)
            head.save(update_fields=["seq", "hash"])
        else:
            batch.insert(record)
            # key: a later record of this batch replaces the head's update.
            batch.raw(
                f"UPDATE {_HEAD_TABLE} SET seq = %s, hash = %s WHERE shard = %s",  # noqa: S608
                [head.seq, head.hash, shard],
                key=memo_key,
            )
            batch.memo[memo_key] = head
    return record


def security_event_record(
    *,
    kind: str,
    severity: str = SecurityEvent.Severity.WARNING,
    merchant: Any = None,
    actor: Any = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
) -> SecurityEvent:
    actor_id, _label = _actor_fields(actor) if actor is not None else ("", "")
    with transaction.atomic():
        event = SecurityEvent.objects.create(
            created_at=timezone.now(),
            kind=kind,
            severity=severity,
            merchant_id=_merchant_ref(merchant),
            actor_id=actor_id,
            ip=_request_ip(request),
            request_id=(getattr(request, "request_id", None) or request_id_var.get() or "")[:64],
            data=data or {},
        )
        audit_record(
            action=f"security.{kind}", actor=actor, merchant=merchant, data=data, request=request
        )
    logger.warning("security event", extra={"kind": kind, "severity": severity})
    return event


@dataclass(frozen=True)
class ChainProblem:
    shard: int
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"shard {self.shard} seq {self.seq}: {self.problem}"


def audit_chain_verify(*, chunk_size: int = 5000, using: str = "default") -> list[ChainProblem]:
    """Walks every shard's chain. Finds edited records (hash mismatch), deleted
    or inserted ones (sequence gap, broken link) and a truncated tail (head
    mismatch). Returns the problems; an empty list means the chain holds."""
    problems: list[ChainProblem] = []
    heads = {h.shard: h for h in AuditChainHead.objects.using(using).all()}
    for shard in range(AUDIT_CHAIN_SHARDS):
        head = heads.get(shard)
        if head is None:
            # No heads at all is an empty trail; any record without its
            # shard's head (audit_record creates all heads together) is not.
            if heads or AuditRecord.objects.using(using).exists():
                problems.append(ChainProblem(shard, 0, "chain head missing"))
            continue
        expected_seq, prev_hash = 1, GENESIS_HASH
        records = (
            AuditRecord.objects.using(using)
            .filter(shard=shard)
            .order_by("seq")
            .iterator(chunk_size=chunk_size)
        )
        for record in records:
            if record.seq != expected_seq:
                problems.append(
                    ChainProblem(shard, expected_seq, f"records missing up to seq {record.seq}")
                )
            if record.prev_hash != prev_hash:
                problems.append(
                    ChainProblem(shard, record.seq, "link to the previous record is broken")
                )
            if record.compute_hash() != record.hash:
                problems.append(ChainProblem(shard, record.seq, "record content was altered"))
            expected_seq, prev_hash = record.seq + 1, record.hash
        if head.seq != expected_seq - 1 or head.hash != prev_hash:
            problems.append(
                ChainProblem(
                    shard, head.seq, f"chain ends at seq {expected_seq - 1}, head says {head.seq}"
                )
            )
    return problems

"""Writes to the audit trail. Call these inside the business action's own
transaction, so an action and its audit record commit or vanish together."""

from __future__ import annotations

import logging
import secrets
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

logger = logging.getLogger("anfu.security")


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


def _connection_shard() -> int:
    """The shard this database connection writes to, drawn once per
    connection. Random across connections, so concurrent writers rarely wait
    on one head row; fixed within one, so a transaction writing several
    records locks a single head and two such transactions cannot deadlock."""
    conn = transaction.get_connection()
    shard = getattr(conn, "_anfu_audit_shard", None)
    if shard is None:
        shard = secrets.randbelow(AUDIT_CHAIN_SHARDS)
        conn._anfu_audit_shard = shard  # type: ignore[attr-defined]
    return shard


def _locked_head(shard: int) -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(shard=shard).first()
    if head is None:
        # The heads come with migration 0002; a flushed database (tests,
        # a restore into an empty schema) recreates all of them at once.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(shard=s) for s in range(AUDIT_CHAIN_SHARDS)], ignore_conflicts=True
        )
        head = AuditChainHead.objects.select_for_update().get(shard=shard)
    return head


def audit_record(
    *,
    action: str,
    actor: Any = None,
    merchant: Any = None,
    target: Model | None = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
) -> AuditRecord:
    actor_id, actor_label = _actor_fields(actor)
    # savepoint=False: inside a business action's transaction the record
    # commits or vanishes with the action anyway, and a savepoint would cost
    # two extra round trips on every audited write.
    with transaction.atomic(savepoint=False):
        head = _locked_head(_connection_shard())
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
        record.save(force_insert=True)
        head.seq, head.hash = record.seq, record.hash
        head.save(update_fields=["seq", "hash"])
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

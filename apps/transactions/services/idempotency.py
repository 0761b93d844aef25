"""Idempotency of the terminal's state-changing requests (DESIGN.md §6).

Every terminal action that changes state runs in ONE durable transaction
that also stores its idempotency record, so an answer exists exactly when
what it describes was committed. The same key with the same request gets the
stored answer (`replayed`); with a different request it is a 422; while a
request with the key is in flight, a 409.

The record also keeps the signed request's nonce: the durable record of that
nonce (apps/terminals/replay.py). The very same signed request arriving
again (its nonce forgotten by Redis) is refused as a replay, whereas a
terminal's own retry, signed afresh, gets the stored answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.db import WriteBatch, fetch_one, reader
from apps.transactions.errors import PaymentError, RequestReplayed
from apps.transactions.models import IdempotencyRecord, Payment

# A reversal that found no payment stores this record under the original's
# key, so the late original meets it in the lookup it makes anyway.
BLOCKED_OPERATION = "payment.blocked"


@dataclass
class Answer:
    """What the API answers: HTTP status and JSON body. `replayed` marks a
    stored answer returned again for the same Idempotency-Key."""

    status: int
    body: dict
    replayed: bool = False
    payment: Payment | None = None
    timings: dict[str, float] = field(default_factory=dict)


def request_hash(method: str, path: str, data: Any) -> str:
    """The fingerprint a key is bound to: method, path and the body as
    canonical JSON (so key order or spacing do not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def _lock_id(terminal_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{terminal_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def advisory_lock(terminal_id: int, key: str, *, wait: bool) -> bool:
    """A transaction-scoped advisory lock on (terminal, key). PostgreSQL
    only: SQLite serialises writers anyway (one writer at a time)."""
    if connection.vendor != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    row = fetch_one(f"SELECT {function}(%s)", [_lock_id(terminal_id, key)])
    return wait or bool(row and row[0])


def key_check(key: str) -> None:
    if not key:
        raise PaymentError(
            "idempotency_key_missing", "This request needs an Idempotency-Key header."
        )
    if len(key) > 255:
        raise PaymentError(
            "idempotency_key_invalid", "An Idempotency-Key is at most 255 characters."
        )


def _replay(record: IdempotencyRecord, digest: str, nonce: str) -> Answer:
    if record.operation == BLOCKED_OPERATION:
        raise PaymentError(
            "payment_key_reversed",
            "This payment was reversed before it arrived; it is refused.",
            status_code=409,
        )
    if nonce and record.request_nonce == nonce:
        raise RequestReplayed()
    if record.request_hash != digest:
        raise PaymentError(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
            status_code=422,
        )
    return Answer(record.response_status, record.response_body, replayed=True)


def idempotency_replay_find(
    *, terminal: Any, key: str, digest: str, nonce: str = ""
) -> Answer | None:
    """The stored answer for this key (outside any transaction): lets a
    retried refund skip the supervisor PIN check. Raises the 422 of a reused
    key; None when the key is new."""
    record = IdempotencyRecord.objects.filter(terminal=terminal, key=key).first()
    return _replay(record, digest, nonce) if record is not None else None


def idempotency_claim(*, terminal: Any, key: str, digest: str, nonce: str) -> Answer | None:
    """Inside the action's transaction: claims the key (409 while another
    request with it is in flight) and returns the stored answer if any."""
    key_check(key)
    if not advisory_lock(terminal.pk, key, wait=False):
        raise PaymentError(
            "idempotency_in_flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            status_code=409,
        )
    return idempotency_replay_find(terminal=terminal, key=key, digest=digest, nonce=nonce)


def stored_answer_select() -> tuple[str, str]:
    """(columns, LEFT JOIN) that read a terminal's record for a key in a
    caller's SELECT (params: terminal id, key), for stored_answer_read."""
    records = reader(IdempotencyRecord, "ir")
    return records.columns, (
        f'LEFT JOIN {records.table} ir ON ir.terminal_id = %s AND ir."key" = %s'
    )


def stored_answer_read(
    row: Any, offset: int, *, digest: str, nonce: str
) -> tuple[Answer | None, int]:
    """The replayed answer read by stored_answer_select's columns at
    `offset` of `row` (None: the key is new), and the offset after them."""
    records = reader(IdempotencyRecord, "ir")
    record = records.read(row, offset)
    answer = _replay(record, digest, nonce) if record is not None else None  # type: ignore[arg-type]
    return answer, offset + records.width


def idempotency_store(
    *,
    terminal: Any,
    key: str,
    operation: str,
    digest: str,
    nonce: str,
    answer: Answer,
    batch: WriteBatch | None = None,
) -> IdempotencyRecord:
    record = IdempotencyRecord(
        terminal=terminal,
        key=key,
        operation=operation,
        request_hash=digest,
        request_nonce=nonce,
        response_status=answer.status,
        response_body=answer.body,
        payment=answer.payment,
    )
    if batch is None:
        record.save(force_insert=True)
    else:
        batch.insert(record)
    return record


def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Deletes stored answers older than IDEMPOTENCY_KEEP_DAYS (≥ 7: a
    terminal may retry after days offline)."""
    older_than = older_than or timedelta(days=settings.IDEMPOTENCY_KEEP_DAYS)
    with transaction.atomic(durable=True):
        deleted, _ = IdempotencyRecord.objects.filter(
            created_at__lt=timezone.now() - older_than
        ).delete()
    return deleted

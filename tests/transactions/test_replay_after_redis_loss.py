"""Replay protection that survives Redis losing its state (issue 19, part 2):
a captured signed request is refused with the replay code even after Redis
was flushed, because every nonce is also kept in PostgreSQL for the window
(apps/terminals/replay.py). A terminal's own retry, signed afresh, still gets
the stored answer. Real HTTP through the signed API."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from apps.audit.models import SecurityEvent
from apps.transactions.models import Payment
from apps.transactions.services import payment_code_issue
from tests.terminals.conftest import error_code, send, signed_request
from tests.transactions.factories import balance_of, funded_payer

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _redis_loses_everything() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def _payment_body(payer, operator, amount: int) -> dict:
    return {
        "amount": amount,
        "currency": "CNY",
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
        "latitude": "31.230400",
        "longitude": "121.473700",
    }


def test_a_captured_read_is_refused_after_redis_forgot_its_nonce(pos):
    captured = signed_request(pos, "GET", "/api/v1/terminal/ping")
    assert send(pos, captured).status_code == 200
    _redis_loses_everything()
    replay = send(pos, captured)
    assert (replay.status_code, error_code(replay)) == (401, "signature_replayed")
    assert SecurityEvent.objects.filter(
        kind="terminal_signature_replay", data__terminal_id=pos.terminal_id
    ).exists()


def test_a_captured_payment_is_refused_after_redis_forgot_its_nonce(pos, operator):
    payer = funded_payer(100_00)
    key = uuid.uuid4().hex
    captured = signed_request(
        pos,
        "POST",
        "/api/v1/terminal/payments",
        _payment_body(payer, operator, 30_00),
        headers={"Idempotency-Key": key},
    )
    assert send(pos, captured).status_code == 201
    _redis_loses_everything()
    replay = send(pos, captured)
    assert (replay.status_code, error_code(replay)) == (401, "signature_replayed")
    assert Payment.objects.count() == 1
    assert balance_of(payer=payer) == 70_00


def test_the_terminals_own_retry_signed_afresh_still_gets_the_first_answer(pos, operator):
    payer = funded_payer(100_00)
    key, body = uuid.uuid4().hex, _payment_body(payer, operator, 30_00)
    first = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    _redis_loses_everything()
    again = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert balance_of(payer=payer) == 70_00

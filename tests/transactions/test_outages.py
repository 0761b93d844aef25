"""A payment while one of the platform's own parts is down (issue 19): the
signed API answers 503 `service_unavailable` naming the part, with
Retry-After and a verifying server signature; nothing is booked, the
Idempotency-Key is not burnt, and the very same request succeeds once the
part is back. Real HTTP through the signed API (live_server); the outage is
made for this test only: the cache pointed at a closed port, or this test's
own database refusing connections. No shared service is touched."""

from __future__ import annotations

import socket
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from apps.transactions.models import IdempotencyRecord, Payment
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import payment_code_issue
from tests.transactions.factories import balance_of, funded_payer
from tests.transactions.pos import error_code

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_unreachable(settings, pos):
    """The cache (nonces, rate limits, terminal auth cache) at a port where
    nothing listens. The terminal's connections are dropped on the way in
    and out, so the server handles the next request on a fresh thread (and
    so a fresh Redis connection) each time."""
    real = settings.CACHES
    pos.session.close()
    settings.CACHES = {
        "default": {**real["default"], "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}
    }
    try:
        yield
    finally:
        settings.CACHES = real
        pos.session.close()


@contextmanager
def database_refusing_connections():
    """This test's own database stops taking connections and loses the
    server's open ones (as during a PostgreSQL restart); the test's own
    connection stays, to check and put things back. Said from the server's
    maintenance database: a database cannot close itself."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (mine,) = cursor.fetchone()
    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> %s",
            [name, mine],
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def payment_body(payer, operator, amount):
    return {
        "amount": amount,
        "currency": "CNY",
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
        "latitude": "31.230400",
        "longitude": "121.473700",
    }


@pytest.mark.redis
def test_with_redis_down_a_payment_is_refused_with_a_signed_503_and_succeeds_once_it_is_back(
    pos, operator, settings
):
    payer = funded_payer(100_00)
    body, key = payment_body(payer, operator, 12_00), uuid.uuid4().hex
    with redis_unreachable(settings, pos):
        refused = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    # pos.post verified the server's signature on the 503.
    assert refused.status_code == 503, refused.text
    assert error_code(refused) == "service_unavailable"
    assert refused.json()["error"]["param"] == "redis"
    assert int(refused.headers["Retry-After"]) > 0
    assert "Signature" in refused.headers
    assert not Payment.objects.exists()
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    assert balance_of(payer=payer) == 100_00

    again = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "completed"
    assert "Idempotent-Replayed" not in again.headers
    assert Payment.objects.count() == 1
    assert balance_of(payer=payer) == 88_00
    assert ledger_integrity_problems() == []


@pytest.mark.redis
def test_with_redis_down_even_a_read_of_the_terminal_api_is_a_signed_503(pos, settings):
    with redis_unreachable(settings, pos):
        refused = pos.get("/api/v1/terminal/config")
    assert refused.status_code == 503
    assert refused.json()["error"]["param"] == "redis"


@pytest.mark.postgres
def test_with_the_database_down_a_payment_is_refused_with_a_signed_503_and_succeeds_once_it_is_back(
    pos, operator
):
    payer = funded_payer(100_00)
    body, key = payment_body(payer, operator, 7_00), uuid.uuid4().hex
    pos.session.close()
    with database_refusing_connections():
        refused = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    assert refused.status_code == 503, refused.text
    assert error_code(refused) == "service_unavailable"
    assert refused.json()["error"]["param"] == "database"
    assert int(refused.headers["Retry-After"]) > 0
    assert not Payment.objects.exists()
    assert not IdempotencyRecord.objects.filter(key=key).exists()

    again = pos.post("/api/v1/terminal/payments", body, idempotency_key=key)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "completed"
    assert Payment.objects.count() == 1
    assert balance_of(payer=payer) == 93_00
    assert ledger_integrity_problems() == []

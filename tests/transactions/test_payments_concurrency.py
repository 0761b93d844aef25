"""Concurrent payments through the real signed API on PostgreSQL: each
thread is a terminal request to the live server (its own connection)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.risk.services import risk_list_entry_add
from apps.transactions.models import LedgerAccount, Payment
from apps.transactions.selectors import ledger_integrity_problems
from apps.transactions.services import payment_code_issue
from tests.transactions.factories import balance_of, funded_payer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# max_connections is 100 and shared: 20 threads (plus the live server's
# connection per request thread) stay well below it.
THREADS = 20


def _parallel(job, count):
    barrier = threading.Barrier(min(count, THREADS))

    def run(i):
        if i < THREADS:
            barrier.wait()
        return job(i)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, range(count)))


def test_50_parallel_payments_against_a_wallet_holding_enough_for_10_let_exactly_10_through(
    pos, operator
):
    payer = funded_payer(10 * 3_00)
    # 50 payments of one payer in a second trip the payer velocity rule
    # (hold); risk is not under test here, money is.
    risk_list_entry_add(
        kind="allow",
        subject_type="payer",
        subject_id=payer.pk,
        reason="concurrency test of the ledger",
        actor="test",
        skip_rules=["velocity.payer"],
    )
    wallet = LedgerAccount.objects.get(payer=payer)
    codes = [payment_code_issue(payer=payer).code for _ in range(50)]
    lowest = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            lowest.append(LedgerAccount.objects.get(pk=wallet.pk).balance)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answers = _parallel(
            lambda i: pos.post(
                "/api/v1/terminal/payments",
                {"amount": 3_00, "payment_code": codes[i], "operator_id": str(operator.public_id)},
                idempotency_key=f"p-{i}",
            ),
            50,
        )
    finally:
        stop.set()
        watcher.join()
    statuses = [a.json().get("status") if a.status_code == 201 else a.status_code for a in answers]
    reasons = [a.json().get("reasons") for a in answers if a.status_code == 201]
    assert statuses.count("completed") == 10, (statuses, reasons)
    assert all(s in ("completed", "declined", 409) for s in statuses), statuses
    assert balance_of(payer=payer) == 0
    assert min(lowest) >= 0
    assert Payment.objects.filter(status="completed").count() == 10
    assert ledger_integrity_problems() == []


def test_the_same_idempotency_key_sent_20_times_in_parallel_makes_one_payment(pos, operator):
    payer = funded_payer(100_00)
    body = {
        "amount": 5_00,
        "payment_code": payment_code_issue(payer=payer).code,
        "operator_id": str(operator.public_id),
    }
    answers = _parallel(
        lambda i: pos.post("/api/v1/terminal/payments", body, idempotency_key="same-key"), 20
    )
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {201, 409}, codes
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in created}) == 1
    assert all(
        a.json()["error"]["code"] == "idempotency_in_flight"
        for a in answers
        if a.status_code == 409
    )
    assert Payment.objects.count() == 1
    assert balance_of(payer=payer) == 95_00
    replay = pos.post(
        "/api/v1/terminal/payments", {**body, "amount": 6_00}, idempotency_key="same-key"
    )
    assert replay.status_code == 422

"""Concurrent money movements on real PostgreSQL: each worker thread has its
own database connection and its own transactions, as gunicorn workers do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from queue import Empty, Queue

import pytest
from django.db import connection

from apps.core.money import Money
from apps.transactions.errors import InsufficientFunds
from apps.transactions.models import LedgerAccount
from apps.transactions.selectors import (
    ledger_balance_for_merchant,
    ledger_balance_for_payer,
    ledger_integrity_problems,
)
from apps.transactions.services import (
    ledger_account_for_merchant,
    ledger_payment_transfer,
    ledger_refund,
)
from tests.accounts.factories import MerchantFactory
from tests.transactions.factories import funded_payer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The PostgreSQL server is shared (max_connections 100): 20 connections at a
# time keep the test honest (far more than the 2 cores can run at once) without
# starving other test runs.
WORKERS = 20


def run_in_parallel(
    job: Callable[[object], object], items: Iterable[object], workers: int = WORKERS
) -> list[object]:
    """Runs job(item) for every item on `workers` threads released together;
    returns each result or the exception it raised."""
    queue: Queue = Queue()
    for item in items:
        queue.put(item)
    barrier = threading.Barrier(workers)
    results: list[object] = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait()
            while True:
                try:
                    item = queue.get_nowait()
                except Empty:
                    return
                try:
                    result = job(item)
                except Exception as exc:
                    result = exc
                with lock:
                    results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_50_parallel_payments_from_a_wallet_holding_enough_for_10_let_exactly_10_through():
    payer = funded_payer(10 * 7_00)
    merchants = [MerchantFactory() for _ in range(3)]
    wallet_id = LedgerAccount.objects.get(payer=payer).pk
    lowest_seen = []
    stop = threading.Event()

    def watch_balance():
        # A second observer: the balance is never seen below zero mid-run.
        try:
            while not stop.is_set():
                lowest_seen.append(
                    LedgerAccount.objects.values_list("balance", flat=True).get(pk=wallet_id)
                )
        finally:
            connection.close()

    watcher = threading.Thread(target=watch_balance)
    watcher.start()
    try:
        results = run_in_parallel(
            lambda i: ledger_payment_transfer(
                payer=payer,
                merchant=merchants[i % 3],
                amount=Money(7_00),
                event=("test.payment", f"par-{i}"),
            ),
            range(50),
        )
    finally:
        stop.set()
        watcher.join()

    succeeded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(results) == 50
    assert len(succeeded) == 10
    assert all(isinstance(r, InsufficientFunds) for r in refused), refused[:3]
    assert ledger_balance_for_payer(payer=payer).amount == 0
    assert min(lowest_seen) >= 0
    assert ledger_integrity_problems() == []


def test_concurrent_payments_to_one_busy_merchant_all_land_and_its_balance_equals_its_postings():
    merchant = MerchantFactory(discount_rate_bp=38)
    payers = [funded_payer(1_000_00) for _ in range(8)]
    amounts = [1_00 + 37 * i for i in range(200)]

    results = run_in_parallel(
        lambda i: ledger_payment_transfer(
            payer=payers[i % len(payers)],
            merchant=merchant,
            amount=Money(amounts[i]),
            event=("test.payment", f"hot-{i}"),
        ),
        range(len(amounts)),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    expected_net = sum(a - Money(a).fee(38).amount for a in amounts)
    assert ledger_balance_for_merchant(merchant=merchant).amount == expected_net
    assert ledger_integrity_problems() == []


def test_payments_and_refunds_crossing_between_the_same_payers_and_merchant_do_not_deadlock():
    merchant = MerchantFactory()
    payers = [funded_payer(100_00) for _ in range(5)]
    earlier = [
        ledger_payment_transfer(
            payer=payers[i % 5],
            merchant=merchant,
            amount=Money(10_00),
            event=("test.payment", f"x-{i}"),
        )
        for i in range(20)
    ]

    def job(i):
        if i % 2:
            return ledger_refund(
                original=earlier[i], amount=Money(10_00), event=("test.refund", f"x-{i}")
            )
        return ledger_payment_transfer(
            payer=payers[i % 5],
            merchant=merchant,
            amount=Money(1_00),
            event=("test.payment", f"y-{i}"),
        )

    results = run_in_parallel(job, range(20))

    assert [r for r in results if isinstance(r, Exception)] == []
    assert ledger_integrity_problems() == []


def test_concurrent_refunds_of_one_payment_never_refund_more_than_it():
    merchant = MerchantFactory()
    payer = funded_payer(100_00)
    payment = ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(10_00), event=("test.payment", "once")
    )

    results = run_in_parallel(
        lambda i: ledger_refund(
            original=payment, amount=Money(3_00), event=("test.refund", f"once-{i}")
        ),
        range(10),
    )

    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert ledger_balance_for_payer(payer=payer).amount == 100_00 - 10_00 + 9_00
    assert ledger_integrity_problems() == []


def test_a_merchants_settlement_account_created_by_many_first_payments_at_once_is_one_account():
    merchant = MerchantFactory()

    results = run_in_parallel(
        lambda _i: ledger_account_for_merchant(merchant=merchant).pk, range(10), workers=10
    )

    assert not any(isinstance(r, Exception) for r in results)
    assert len(set(results)) == 1
    assert LedgerAccount.objects.filter(merchant=merchant).count() == 1

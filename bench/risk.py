"""Risk benchmarks (not a test).

1. Decision latency (p50, p99) of the full rule set with 10 thousand and then
   1 million historical payments in PostgreSQL. Targets: p99 < 5 ms, and the
   1-million p99 within 1.3x the 10-thousand one (decisions read O(1) rows
   and one Redis round trip, never payment history).
2. The balance monitor's run over 1 million postings, in the same run as a
   plain SQL aggregate over the same table. Target: within 2x.

Runs against a scratch database created next to DATABASE_URL's (dropped at
the end unless --keep), and REDIS_URL's Redis when set (its velocity keys are
namespaced by a random prefix). Sizes are flags:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anfu REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/risk.py [--history 1000000] [--postings 1000000] [--decisions 3000]

The last line printed is one JSON object with every figure and its target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import percentile, recreate  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--history", type=int, default=1_000_000, help="large history size (decision records)"
    )
    p.add_argument("--small-history", type=int, default=10_000, help="small history size")
    p.add_argument("--decisions", type=int, default=3_000, help="timed decisions per history size")
    p.add_argument("--postings", type=int, default=1_000_000, help="postings for the monitor bench")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    return p.parse_args()


def scratch_database(url: str) -> tuple[str, str]:
    """(scratch URL, admin DSN) next to `url`'s database."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        sys.exit("bench/risk.py needs DATABASE_URL to point at PostgreSQL")
    name = (parsed.path.lstrip("/") or "anfu") + "_riskbench"
    return urlunparse(parsed._replace(path="/" + name)), urlunparse(
        parsed._replace(path="/postgres")
    )


def grow_history(
    cursor, *, start: int, end: int, merchant_base: int, merchants: int, payers: int
) -> None:
    """Decision records numbered start..end (their payments' history)."""
    cursor.execute(
        """
        INSERT INTO risk_riskdecisionrecord (public_id, created_at, occurred_at, merchant_id, payer_id, terminal_id,
            amount, currency, latitude, longitude, outcome, score, reasons, hits, rule_versions, context, inputs,
            elapsed_ms, payment_public_id, payment_outcome)
        SELECT gen_random_uuid(), now() - make_interval(secs => g * 3), now() - make_interval(secs => g * 3),
               %s + (g %% %s), 1 + (g %% %s), 1 + (g %% 2000), 1000 + (g * 7919) %% 500000, 'CNY', 39.9, 116.4,
               'approve', 0, '[]', '[]', '{}', '{}', '{}', 0.5, gen_random_uuid(), 'approved'
        FROM generate_series(%s::bigint, %s::bigint) AS g
        """,
        [merchant_base, merchants, payers, start, end],
    )
    cursor.execute(
        """
        INSERT INTO risk_payerriskstate (payer_id, day, day_total, day_password_free_total, year, year_total,
            lifetime_total, payments_count, payments_sum, last_latitude, last_longitude, last_at)
        SELECT p, (now() AT TIME ZONE 'Asia/Shanghai')::date, 10000, 5000, 2026, 1000000, 2000000, 40, 400000,
               39.9, 116.4, now() - interval '1 hour'
        FROM generate_series(1, %s) AS p
        ON CONFLICT (payer_id) DO NOTHING
        """,
        [payers],
    )
    cursor.execute("ANALYZE risk_riskdecisionrecord; ANALYZE risk_payerriskstate")


def time_decisions(n: int, *, merchants: list, payers: int, autocommit: bool = False) -> dict:
    """risk_decide's latency. By default each decision runs inside a
    transaction, as the payment service calls it, and its INSERT commits with
    the payment (the commit is the payment's, not timed); with `autocommit`
    the decision commits on its own and that commit is timed too."""
    from django.db import transaction
    from django.utils import timezone

    from apps.risk.engine import PaymentContext, risk_decide

    rng = random.Random(7)
    timings = []
    for i in range(n + 200):
        merchant = rng.choice(merchants)
        ctx = PaymentContext(
            payer_id=rng.randint(1, payers),
            payer_account_class="III",
            merchant_id=merchant.pk,
            merchant_mcc=merchant.mcc,
            terminal_id=rng.randint(1, 2000),
            shop_latitude=39.9087,
            shop_longitude=116.3975,
            shop_radius_m=200,
            shop_opens_at=dtime(0, 0),
            shop_closes_at=dtime(0, 0),
            amount=rng.randint(100, 50_000),
            currency="CNY",
            latitude=39.9088,
            longitude=116.3976,
            occurred_at=timezone.now(),
            password_verified=bool(i % 2),
        )
        if autocommit:
            started = time.perf_counter()
            risk_decide(ctx=ctx)
            elapsed = (time.perf_counter() - started) * 1000
        else:
            with transaction.atomic():
                started = time.perf_counter()
                risk_decide(ctx=ctx)
                elapsed = (time.perf_counter() - started) * 1000
        if i >= 200:  # warm-up: connections, caches, plans
            timings.append(elapsed)
    return {
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(percentile(timings, 99), 3),
        "max_ms": round(max(timings), 3),
    }


def build_ledger(cursor, *, postings: int, wallets: int) -> None:
    """`postings` postings in balanced pairs: top-ups (clearing → wallet) and
    payments (wallet → a merchant's settlement), then cached balances set to
    the sums (as the ledger service keeps them)."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import Merchant, Payer, User
    from apps.transactions.models import AccountKind, LedgerAccount

    password = make_password(None)
    users = User.objects.bulk_create(
        [User(email=f"bench{i}@bench.test", password=password) for i in range(wallets)],
        batch_size=2000,
    )
    payers = Payer.objects.bulk_create(
        [Payer(user=u, account_class="III") for u in users], batch_size=2000
    )
    merchants = Merchant.objects.bulk_create(
        [Merchant(name=f"bench m{i}", status="active") for i in range(100)]
    )
    accounts = LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=AccountKind.PAYER_WALLET, payer=p) for p in payers]
        + [LedgerAccount(kind=AccountKind.MERCHANT_SETTLEMENT, merchant=m) for m in merchants]
        + [LedgerAccount(kind=AccountKind.EXTERNAL_CLEARING)],
        batch_size=2000,
    )
    wallet_ids = [a.pk for a in accounts[:wallets]]
    settlement_ids = [a.pk for a in accounts[wallets:-1]]
    clearing_id = accounts[-1].pk
    assert wallet_ids == list(range(wallet_ids[0], wallet_ids[0] + wallets)), (
        "wallet ids not contiguous"
    )
    entries = postings // 2
    cursor.execute(
        """
        INSERT INTO transactions_journalentry (public_id, kind, currency, merchant_id, event_type, event_id,
            idempotency_key, original_id, memo, created_at)
        SELECT gen_random_uuid(), CASE WHEN g %% 2 = 0 THEN 'top_up' ELSE 'payment' END, 'CNY', NULL, '', '', '',
               NULL, '', now()
        FROM generate_series(0, %s - 1) AS g
        """,
        [entries],
    )
    cursor.execute("SELECT MIN(id) FROM transactions_journalentry")
    first = cursor.fetchone()[0]
    cursor.execute(
        """
        INSERT INTO transactions_posting (entry_id, account_id, amount)
        SELECT e.id,
               CASE WHEN (e.id - %(first)s) %% 2 = 0 THEN %(clearing)s ELSE %(wallet0)s + ((e.id - %(first)s) / 2) %% %(wallets)s END,
               CASE WHEN (e.id - %(first)s) %% 2 = 0 THEN -1000 ELSE -300 END
        FROM transactions_journalentry e
        UNION ALL
        SELECT e.id,
               CASE WHEN (e.id - %(first)s) %% 2 = 0 THEN %(wallet0)s + ((e.id - %(first)s) / 2) %% %(wallets)s
                    ELSE %(settle0)s + (e.id - %(first)s) %% %(merchants)s END,
               CASE WHEN (e.id - %(first)s) %% 2 = 0 THEN 1000 ELSE 300 END
        FROM transactions_journalentry e
        """,
        {
            "first": first,
            "clearing": clearing_id,
            "wallet0": wallet_ids[0],
            "wallets": wallets,
            "settle0": settlement_ids[0],
            "merchants": len(settlement_ids),
        },
    )
    cursor.execute(
        """
        UPDATE transactions_ledgeraccount a SET balance = s.total
        FROM (SELECT account_id, SUM(amount) AS total FROM transactions_posting GROUP BY account_id) s
        WHERE a.id = s.account_id
        """
    )
    cursor.execute("ANALYZE transactions_posting")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they come
    args = parse()
    base_url = os.environ.get("DATABASE_URL", "")
    url, admin_dsn = scratch_database(base_url)
    name = urlparse(url).path.lstrip("/")
    recreate(admin_dsn, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")  # development secrets are fine for a scratch database
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ["CACHE_KEY_PREFIX"] = f"riskbench-{secrets.token_hex(4)}"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    load = os.getloadavg()[0]
    from django.db import connection

    from apps.accounts.models import Merchant

    try:
        print(f"scratch database {name}; counters: {'redis' if settings.REDIS_URL else 'database'}")
        call_command("migrate", verbosity=0)
        merchants = Merchant.objects.bulk_create(
            [
                Merchant(
                    name=f"risk bench {i}",
                    status="active",
                    mcc=random.choice(["5814", "5411", "5942"]),
                )
                for i in range(200)
            ]
        )
        base = min(m.pk for m in merchants)
        results = {}
        with connection.cursor() as cursor:
            small_payers = max(1, args.small_history // 10)
            started = time.perf_counter()
            grow_history(
                cursor,
                start=1,
                end=args.small_history,
                merchant_base=base,
                merchants=len(merchants),
                payers=small_payers,
            )
            print(
                f"history {args.small_history:,} records in {time.perf_counter() - started:.1f} s"
            )
            results["10k"] = time_decisions(
                args.decisions, merchants=merchants, payers=small_payers
            )
            print(f"decision latency with {args.small_history:,} records: {results['10k']}")

            large_payers = max(1, args.history // 10)
            started = time.perf_counter()
            grow_history(
                cursor,
                start=args.small_history + 1,
                end=args.history,
                merchant_base=base,
                merchants=len(merchants),
                payers=large_payers,
            )
            print(
                f"history grown to {args.history:,} records in {time.perf_counter() - started:.1f} s"
            )
            results["1m"] = time_decisions(args.decisions, merchants=merchants, payers=large_payers)
            print(f"decision latency with {args.history:,} records: {results['1m']}")
            results["1m_autocommit"] = time_decisions(
                args.decisions, merchants=merchants, payers=large_payers, autocommit=True
            )
            print(f"  the same, each decision committing on its own: {results['1m_autocommit']}")

            started = time.perf_counter()
            build_ledger(cursor, postings=args.postings, wallets=2000)
            cursor.execute("SELECT COUNT(*) FROM transactions_posting")
            n_postings = cursor.fetchone()[0]
            print(
                f"ledger with {n_postings:,} postings built in {time.perf_counter() - started:.1f} s"
            )

            def sql_aggregate() -> float:
                t0 = time.perf_counter()
                cursor.execute(
                    "SELECT account_id, SUM(amount) FROM transactions_posting GROUP BY account_id"
                )
                cursor.fetchall()
                return time.perf_counter() - t0

            from apps.transactions.monitoring import ledger_balance_monitor_run

            def monitor() -> float:
                t0 = time.perf_counter()
                run = ledger_balance_monitor_run()
                elapsed = time.perf_counter() - t0
                assert run.ok, run.findings[:3]
                return elapsed

            sql_aggregate()  # warm the cache for both alike
            sql_times, monitor_times = [], []
            for _ in range(3):
                sql_times.append(sql_aggregate())
                monitor_times.append(monitor())
            sql_s, monitor_s = statistics.median(sql_times), statistics.median(monitor_times)
            print(f"plain SQL aggregate over {n_postings:,} postings: {sql_s:.3f} s (median of 3)")
            print(
                f"balance monitor run (drift, ledger sum, negatives, swings): {monitor_s:.3f} s (median of 3)"
            )

            # sanity: a balance edited behind the ledger's back is found in one run
            cursor.execute(
                "UPDATE transactions_ledgeraccount SET balance = balance + 1 WHERE id = (SELECT MIN(id) FROM transactions_ledgeraccount WHERE kind = 'payer_wallet')"
            )
            run = ledger_balance_monitor_run()
            print(
                f"after editing one cached balance: {run.stats['drifts']} drift found, account frozen"
            )

        ratio = (
            results["1m"]["p99_ms"] / results["10k"]["p99_ms"] if results["10k"]["p99_ms"] else None
        )
        figures = {
            "history_small": args.small_history,
            "history_large": args.history,
            "decisions_timed": args.decisions,
            "counters": "redis" if settings.REDIS_URL else "database",
            "decision_p50_ms_10k": results["10k"]["p50_ms"],
            "decision_p99_ms_10k": results["10k"]["p99_ms"],
            "decision_p50_ms_1m": results["1m"]["p50_ms"],
            "decision_p99_ms_1m": results["1m"]["p99_ms"],
            "decision_p99_ratio_1m_vs_10k": round(ratio, 3) if ratio else None,
            "decision_p50_ms_1m_autocommit": results["1m_autocommit"]["p50_ms"],
            "decision_p99_ms_1m_autocommit": results["1m_autocommit"]["p99_ms"],
            "postings": n_postings,
            "monitor_s": round(monitor_s, 3),
            "sql_aggregate_s": round(sql_s, 3),
            "monitor_vs_sql": round(monitor_s / sql_s, 3) if sql_s else None,
            "drift_found_in_one_run": run.stats["drifts"] == 1,
            "load_average_at_start": round(load, 2),
            "targets": {
                "decision_p99_ms": 5,
                "decision_p99_ratio_1m_vs_10k": 1.3,
                "monitor_vs_sql": 2.0,
            },
        }
        figures["met"] = {
            "decision_p99_ms": max(figures["decision_p99_ms_1m"], figures["decision_p99_ms_10k"])
            < 5,
            "decision_p99_ratio_1m_vs_10k": ratio is not None and ratio <= 1.3,
            "monitor_vs_sql": figures["monitor_vs_sql"] is not None
            and figures["monitor_vs_sql"] <= 2.0,
        }
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate(admin_dsn, name, drop_only=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

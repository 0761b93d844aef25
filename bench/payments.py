"""Payments through the real HTTP stack (DESIGN.md §6, issue 5).

Starts gunicorn on 127.0.0.1 (PostgreSQL and Redis when DATABASE_URL /
REDIS_URL are set, as in production), activates 8 terminals over HTTP and
drives them from 8 client processes (one simulated terminal each), in
alternating rounds:

- bare:   POST /api/v1/bench/ledger-transfer (TERMINAL_BENCH_ENDPOINTS=1): the
          ledger transfer alone (payer → merchant minus fee, one durable
          transaction), unsigned, no risk, no idempotency, no audit;
- spread: signed POST /api/v1/terminal/payments, the 8 terminals at 8
          merchants (code consumed, risk decided, idempotency stored,
          audited, ledger, answer signed and verified by the client);
- hot:    the same with all 8 terminals at ONE merchant (its settlement
          account credited by every payment).

Per-stage times come from the Server-Timing header the payment view adds
(sig = request authentication incl. signature check, risk = the decision,
writes = the payment's batched writes incl. risk's bookkeeping, ledger,
commit, total), and `cpu`: the worker's CPU time for the whole request, for
bare transfers too (the bench endpoints' middleware): CPU per request is
the figure a busy machine disturbs least.
The velocity and daily-cumulative risk rules are skipped for the bench's
merchants through allow-list entries (a load test is, by design, a velocity
anomaly); every other rule is evaluated as usual.

    .venv/bin/python bench/payments.py [--payments 120] [--rounds 2] [--workers 4]

Database: a scratch PostgreSQL database (created and dropped) next to
DATABASE_URL's; else a temporary SQLite file (figures then mean little).
Stops by itself; the last line is JSON with every figure and its target.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import served  # noqa: E402

TERMINALS = 8
PAYERS_PER_TERMINAL = 30
TARGET_PAYMENT_TO_BARE = 0.50
TARGET_HOT_TO_SPREAD = 0.70
SKIPPED_RULES = [
    "velocity.payer",
    "velocity.terminal",
    "velocity.merchant",
    "amount.kyc_class_limit",
    "amount.password_free_daily",
    "breaker.merchant",
]


def _setup(base_url: str, tmp: str) -> dict:
    """Merchants, shops, operators, terminals (activated over HTTP), funded
    payers. Returns what the client processes need, per mode and terminal."""
    from apps.accounts.models import Membership, Merchant, Payer, Shop, User
    from apps.core.money import Money
    from apps.risk.services import risk_list_entry_add
    from apps.terminals.client import TerminalClient
    from apps.terminals.services import terminal_register
    from apps.transactions.services import wallet_top_up

    def merchant_new(name: str) -> tuple[Merchant, Shop, Membership]:
        merchant = Merchant.objects.create(
            name=name, status=Merchant.Status.ACTIVE, mcc="5812", discount_rate_bp=38
        )
        shop = Shop.objects.create(
            merchant=merchant,
            name=f"{name} shop",
            address="bench",
            latitude="31.2304",
            longitude="121.4737",
        )
        user = User.objects.create_user(f"op-{uuid.uuid4().hex[:10]}@bench.test", None)
        operator = Membership.objects.create(merchant=merchant, user=user, role="cashier")
        risk_list_entry_add(
            kind="allow",
            subject_type="merchant",
            subject_id=merchant.pk,
            reason="bench: a load test is a velocity anomaly by design",
            actor="bench",
            skip_rules=SKIPPED_RULES,
        )
        return merchant, shop, operator

    def terminal_new(merchant, shop, operator, n: int, mode: str) -> dict:
        _terminal, code = terminal_register(
            merchant=merchant, shop=shop, serial_number=f"BENCH-{mode}-{n}", actor=operator.user
        )
        state = f"{tmp}/pos-{mode}-{n}.json"
        TerminalClient(base_url, state).activate(code)
        payers = []
        for _ in range(PAYERS_PER_TERMINAL):
            user = User.objects.create_user(f"payer-{uuid.uuid4().hex[:12]}@bench.test", None)
            payer = Payer.objects.create(user=user, account_class=Payer.AccountClass.CLASS_III)
            wallet_top_up(payer=payer, amount=Money(10**12), reason="bench funding", actor="bench")
            payers.append(payer.pk)
        return {
            "state": state,
            "operator": str(operator.public_id),
            "merchant": str(merchant.public_id),
            "payers": payers,
        }

    spread, hot = [], []
    hot_merchant = merchant_new("Bench hot merchant")
    for n in range(TERMINALS):
        spread.append(terminal_new(*merchant_new(f"Bench merchant {n}"), n, "spread"))
        hot.append(terminal_new(*hot_merchant, n, "hot"))
    return {"spread": spread, "hot": hot}


def _codes_for(terminals: list[dict], count: int) -> list[list[str]]:
    """Fresh payment codes (valid 60 s) for each terminal's payers, written
    in bulk: the payer's wallet app is not what is measured."""
    from django.utils import timezone

    from apps.transactions.models import PaymentCode
    from apps.transactions.services import payment_code_hash

    now = timezone.now()
    rows, codes = [], []
    for terminal in terminals:
        mine = []
        for i in range(count):
            code = "29" + f"{secrets.randbelow(10**16):016d}"
            payer_id = terminal["payers"][i % len(terminal["payers"])]
            rows.append(
                PaymentCode(
                    payer_id=payer_id,
                    code_hash=payment_code_hash(code),
                    created_at=now,
                    expires_at=now + timedelta(seconds=60),
                )
            )
            mine.append(code)
        codes.append(mine)
    PaymentCode.objects.bulk_create(rows, batch_size=1000)
    return codes


def _stages_add(stages: dict[str, list[float]], response: Any) -> None:
    for part in response.headers.get("Server-Timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name and dur:
            stages.setdefault(name, []).append(float(dur))


def _client(args: tuple) -> dict:
    """One simulated terminal: its payments back to back."""
    mode, base_url, terminal, codes, payer_public_ids = args
    import requests

    from apps.terminals.client import TerminalClient

    latencies, stages, statuses, errors = [], {}, {}, 0
    started = time.perf_counter()
    if mode == "bare":
        session = requests.Session()
        for i in range(len(codes)):
            t0 = time.perf_counter()
            try:
                response = session.post(
                    base_url + "/api/v1/bench/ledger-transfer",
                    json={
                        "payer": payer_public_ids[i % len(payer_public_ids)],
                        "merchant": terminal["merchant"],
                        "amount": 1000 + i % 500,
                    },
                    timeout=30,
                )
            except requests.RequestException:
                errors += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            _stages_add(stages, response)
    else:
        client = TerminalClient(base_url, terminal["state"], timeout=30)
        for i, code in enumerate(codes):
            t0 = time.perf_counter()
            try:
                response = client.post(
                    "/api/v1/terminal/payments",
                    {
                        "amount": 1000 + i % 500,
                        "currency": "CNY",
                        "payment_code": code,
                        "operator_id": terminal["operator"],
                        "latitude": "31.230400",
                        "longitude": "121.473700",
                    },
                    idempotency_key=uuid.uuid4().hex,
                )
            except Exception:  # a bench counts failures, it does not stop on them
                errors += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            status = (
                response.json().get("status")
                if response.status_code == 201
                else response.status_code
            )
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            _stages_add(stages, response)
    return {
        "elapsed": time.perf_counter() - started,
        "latencies": latencies,
        "stages": stages,
        "statuses": statuses,
        "errors": errors,
    }


def _round(pool, mode: str, base_url: str, setup: dict, payments: int) -> dict:
    from apps.accounts.models import Payer

    terminals = setup["hot" if mode == "hot" else "spread"]
    codes = (
        _codes_for(terminals, payments) if mode != "bare" else [[""] * payments] * len(terminals)
    )
    public = {
        pk: str(pid)
        for pk, pid in Payer.objects.filter(
            pk__in=[p for t in terminals for p in t["payers"]]
        ).values_list("pk", "public_id")
    }
    started = time.perf_counter()
    results = pool.map(
        _client,
        [
            (mode, base_url, t, c, [public[p] for p in t["payers"]])
            for t, c in zip(terminals, codes, strict=True)
        ],
    )
    wall = time.perf_counter() - started
    merged: dict = {"wall": wall, "latencies": [], "stages": {}, "statuses": {}, "errors": 0}
    for r in results:
        merged["latencies"] += r["latencies"]
        merged["errors"] += r["errors"]
        for k, v in r["stages"].items():
            merged["stages"].setdefault(k, []).extend(v)
        for k, v in r["statuses"].items():
            merged["statuses"][k] = merged["statuses"].get(k, 0) + v
    return merged


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=120, help="per terminal per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each mode, alternating")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    options = parser.parse_args()

    # With Redis, tasks go to the broker as in production (no worker runs
    # here: the queue is dropped at the end); without, they run in-process.
    eager = "0" if os.environ.get("REDIS_URL") else "1"
    totals: dict[str, dict] = {}
    with served(
        "payments",
        workers=options.workers,
        threads=options.threads,
        extra_env={"CELERY_TASK_ALWAYS_EAGER": eager},
    ) as server:
        base_url, env = server.base_url, server.env
        try:
            setup = _setup(base_url, server.tmp)
            with multiprocessing.get_context("spawn").Pool(TERMINALS) as pool:
                for mode in ("bare", "spread", "hot"):  # warm-up: connections, caches
                    _round(pool, mode, base_url, setup, 5)
                for _ in range(options.rounds):
                    for mode in ("bare", "spread", "hot"):
                        result = _round(pool, mode, base_url, setup, options.payments)
                        total = totals.setdefault(
                            mode,
                            {
                                "wall": 0.0,
                                "latencies": [],
                                "stages": {},
                                "statuses": {},
                                "errors": 0,
                            },
                        )
                        total["wall"] += result["wall"]
                        total["latencies"] += result["latencies"]
                        total["errors"] += result["errors"]
                        for k, v in result["stages"].items():
                            total["stages"].setdefault(k, []).extend(v)
                        for k, v in result["statuses"].items():
                            total["statuses"][k] = total["statuses"].get(k, 0) + v
            from apps.transactions.selectors import ledger_integrity_problems

            problems = ledger_integrity_problems()
        finally:
            if env.get("REDIS_URL") and not env["REDIS_URL"].endswith("/0"):
                try:
                    import redis

                    redis.Redis.from_url(env["REDIS_URL"]).delete("celery")
                except Exception as exc:  # cleanup is best effort
                    print(f"could not drop the task queue: {exc}")

    def rate(mode: str) -> float:
        t = totals[mode]
        done = sum(v for k, v in t["statuses"].items() if k in ("completed", "201"))
        return done / t["wall"] if t["wall"] else 0.0

    bare, spread, hot = rate("bare"), rate("spread"), rate("hot")
    lat = totals["spread"]["latencies"]
    stages = {
        mode: {k: round(statistics.mean(v), 2) for k, v in totals[mode]["stages"].items()}
        for mode in ("bare", "spread", "hot")
    }
    database = server.database
    print(
        f"database {database}, redis {'yes' if env.get('REDIS_URL') else 'no'}, "
        f"{options.workers} gunicorn workers x {options.threads} threads, {TERMINALS} terminals "
        f"(client processes), {options.rounds} rounds x {options.payments} payments per terminal"
    )
    for mode, figure in (
        ("bare ledger", bare),
        ("payments, spread", spread),
        ("payments, hot merchant", hot),
    ):
        key = {
            "bare ledger": "bare",
            "payments, spread": "spread",
            "payments, hot merchant": "hot",
        }[mode]
        t = totals[key]
        print(
            f"{mode:24s} {figure:8.1f} /s   p50 {_pct(t['latencies'], 0.5):6.1f} ms   "
            f"p99 {_pct(t['latencies'], 0.99):6.1f} ms   statuses {t['statuses']}  errors {t['errors']}"
        )
    print(f"stage means (ms, server side): spread {stages['spread']}  hot {stages['hot']}")
    cpu = {mode: stages[mode].get("cpu", 0.0) for mode in stages}
    print(
        "server CPU per request (ms, the worker's own, less disturbed by a busy machine): "
        f"bare {cpu['bare']}, spread {cpu['spread']}, hot {cpu['hot']}"
    )
    ratio_bare = spread / bare if bare else 0.0
    ratio_hot = hot / spread if spread else 0.0
    print(
        f"payments / bare ledger = {ratio_bare:.2f} (target >= {TARGET_PAYMENT_TO_BARE}); "
        f"hot / spread = {ratio_hot:.2f} (target >= {TARGET_HOT_TO_SPREAD})"
    )
    print(f"ledger integrity after the run: {'ok' if not problems else problems[:3]}")
    print(
        json.dumps(
            {
                "payments_per_s": round(spread, 1),
                "bare_ledger_per_s": round(bare, 1),
                "hot_merchant_payments_per_s": round(hot, 1),
                "p50_ms": round(_pct(lat, 0.5), 1),
                "p99_ms": round(_pct(lat, 0.99), 1),
                "hot_p50_ms": round(_pct(totals["hot"]["latencies"], 0.5), 1),
                "hot_p99_ms": round(_pct(totals["hot"]["latencies"], 0.99), 1),
                "bare_p50_ms": round(_pct(totals["bare"]["latencies"], 0.5), 1),
                "stages_ms": stages,
                "server_cpu_ms": cpu,
                "bare_to_payment_cpu_ratio": round(cpu["bare"] / cpu["spread"], 3)
                if cpu["spread"]
                else None,
                "payments_to_bare_ratio": round(ratio_bare, 3),
                "hot_to_spread_ratio": round(ratio_hot, 3),
                "statuses": {m: totals[m]["statuses"] for m in totals},
                "errors": sum(totals[m]["errors"] for m in totals),
                "ledger_integrity_ok": not problems,
                "database": database,
                "workers": options.workers,
                "terminals": TERMINALS,
                "skipped_risk_rules": SKIPPED_RULES,
                "targets": {
                    "payments_to_bare_min": TARGET_PAYMENT_TO_BARE,
                    "hot_to_spread_min": TARGET_HOT_TO_SPREAD,
                },
                "payments_target_met": ratio_bare >= TARGET_PAYMENT_TO_BARE,
                "hot_target_met": ratio_hot >= TARGET_HOT_TO_SPREAD,
            }
        )
    )


if __name__ == "__main__":
    main()

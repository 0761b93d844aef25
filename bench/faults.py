"""A fault drill (issue 19): signed payments at a steady rate from several
terminals while the platform's own parts fail, one phase at a time.

It never touches a shared service. It starts its own redis-server on a free
port (cache, nonces, rate limits, broker), a scratch PostgreSQL database
next to DATABASE_URL's (created and dropped by bench/_harness.py), gunicorn
and a Celery worker against those two. The phases:

- baseline:       nothing fails;
- redis_down:     its Redis stopped for a few seconds, then started again
                  (empty: it keeps nothing on disk);
- redis_restart:  its Redis shut down and started again at once (empty);
- db_backends:    every backend of the scratch database terminated
                  (pg_terminate_backend), again and again: what a PostgreSQL
                  restart or a failover does to open connections;
- worker_killed:  the Celery worker SIGKILLed, then started again.

Per phase: requests sent, succeeded (2xx), refused with 503 (by code and
part), other 4xx, any other 5xx (target 0), timeouts or broken connections
(target 0) and answers whose signature did not verify (target 0). After
each phase every refused payment is sent again, the same Idempotency-Key
and body, until it succeeds. At the end the ledger check: the ledger sums
to zero, every cached balance equals its postings, no payment was booked
twice, every refused payment was retried successfully, and /healthz sees
the worker again.

    DATABASE_URL=postgres://... .venv/bin/python bench/faults.py [--rate 3] [--terminals 4]

Needs PostgreSQL (DATABASE_URL) and redis-server on PATH. The last line is
JSON with every figure and its target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import free_port, served  # noqa: E402

PHASES = ["baseline", "redis_down", "redis_restart", "db_backends", "worker_killed"]
SKIPPED_RULES = [
    "velocity.payer",
    "velocity.terminal",
    "velocity.merchant",
    "amount.kyc_class_limit",
    "amount.password_free_daily",
    "breaker.merchant",
]
CELERY = [sys.executable, "-m", "celery", "-A", "config"]
PAYERS_PER_TERMINAL = 20
FUNDING = 10**10
# Retries of a refused payment: how long it may take for the part to be back.
RETRY_FOR_SECONDS = 30


class OwnRedis:
    """A redis-server of this drill only, on a free port, keeping nothing on
    disk: a restart brings it back empty."""

    ARGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench/faults.py needs redis-server on PATH")
        self.process = subprocess.Popen(
            [binary, *self.ARGS, "--port", str(self.port), "--dir", self.tmp],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise SystemExit("the drill's redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Worker:
    """The drill's Celery worker (one process: --pool solo), killable."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*CELERY, "worker", "--pool", "solo", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


@dataclass
class Attempt:
    terminal: int
    key: str
    body: dict


@dataclass
class PhaseFigures:
    sent: int = 0
    succeeded: int = 0
    refused_503: Counter = field(default_factory=Counter)
    other_4xx: Counter = field(default_factory=Counter)
    other_5xx: int = 0
    timeouts: int = 0
    unverified: int = 0
    retried_ok: int = 0
    retry_failed: int = 0

    def as_json(self) -> dict:
        return {
            "sent": self.sent,
            "succeeded": self.succeeded,
            "refused_503": dict(self.refused_503),
            "other_4xx": dict(self.other_4xx),
            "other_5xx": self.other_5xx,
            "timeouts": self.timeouts,
            "unverified": self.unverified,
            "retried_ok": self.retried_ok,
            "retry_failed": self.retry_failed,
        }


def _setup(base_url: str, tmp: str, terminals: int) -> list[dict]:
    """One merchant, shop, cashier and activated terminal per terminal, each
    with funded payers; velocity rules out of the way (a steady drive is a
    velocity anomaly by design)."""
    from apps.accounts.models import Membership, Merchant, Payer, Shop, User
    from apps.core.money import Money
    from apps.risk.services import risk_list_entry_add
    from apps.terminals.client import TerminalClient
    from apps.terminals.services import terminal_register
    from apps.transactions.services import wallet_top_up

    made = []
    for n in range(terminals):
        merchant = Merchant.objects.create(
            name=f"Drill merchant {n}", status=Merchant.Status.ACTIVE, mcc="5812"
        )
        shop = Shop.objects.create(
            merchant=merchant,
            name="drill",
            address="drill",
            latitude="31.2304",
            longitude="121.4737",
        )
        user = User.objects.create_user(f"op-{uuid.uuid4().hex[:10]}@drill.test", None)
        operator = Membership.objects.create(merchant=merchant, user=user, role="cashier")
        risk_list_entry_add(
            kind="allow",
            subject_type="merchant",
            subject_id=merchant.pk,
            reason="fault drill: a steady drive is a velocity anomaly by design",
            actor="bench",
            skip_rules=SKIPPED_RULES,
        )
        _terminal, code = terminal_register(
            merchant=merchant, shop=shop, serial_number=f"DRILL-{n}", actor=user
        )
        state = f"{tmp}/pos-{n}.json"
        TerminalClient(base_url, state).activate(code)
        payers = []
        for _ in range(PAYERS_PER_TERMINAL):
            payer_user = User.objects.create_user(f"payer-{uuid.uuid4().hex[:12]}@drill.test", None)
            payer = Payer.objects.create(
                user=payer_user, account_class=Payer.AccountClass.CLASS_III
            )
            wallet_top_up(payer=payer, amount=Money(FUNDING), reason="drill funding", actor="bench")
            payers.append(payer.pk)
        made.append({"state": state, "operator": str(operator.public_id), "payers": payers})
    return made


def _codes(payer_ids: list[int], count: int) -> list[str]:
    """Fresh payment codes (valid 60 s), written in bulk."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from apps.transactions.models import PaymentCode
    from apps.transactions.services import payment_code_hash

    now = timezone.now()
    codes, rows = [], []
    for i in range(count):
        code = "29" + f"{secrets.randbelow(10**16):016d}"
        rows.append(
            PaymentCode(
                payer_id=payer_ids[i % len(payer_ids)],
                code_hash=payment_code_hash(code),
                created_at=now,
                expires_at=now + timedelta(seconds=60),
            )
        )
        codes.append(code)
    PaymentCode.objects.bulk_create(rows)
    return codes


def _send(client: Any, attempt: Attempt) -> tuple[str, str]:
    """(outcome, detail): ok, 503, 4xx, 5xx, timeout or unverified."""
    import requests

    from apps.terminals.client import UntrustedResponse

    try:
        response = client.post(
            "/api/v1/terminal/payments", attempt.body, idempotency_key=attempt.key
        )
    except UntrustedResponse:
        return "unverified", ""
    except requests.RequestException as exc:
        return "timeout", exc.__class__.__name__
    if response.status_code < 300:
        return "ok", str(response.status_code)
    try:
        error = response.json()["error"]
    except (ValueError, KeyError):
        error = {"code": str(response.status_code)}
    if response.status_code == 503:
        return "503", f"{error.get('code')}:{error.get('param')}"
    if response.status_code >= 500:
        return "5xx", error.get("code", "")
    return "4xx", error.get("code", "")


def _drive(
    clients: list[Any],
    terminals: list[dict],
    seconds: float,
    rate: float,
    figures: PhaseFigures,
    refused: list[Attempt],
    succeeded_keys: set[tuple[int, str]],
) -> None:
    """Each terminal sends `rate` payments a second for `seconds`, paced."""
    lock = threading.Lock()
    count = max(1, round(seconds * rate))
    codes = [_codes(t["payers"], count) for t in terminals]

    def terminal_loop(n: int) -> None:
        started = time.monotonic()
        for i in range(count):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            attempt = Attempt(
                n,
                uuid.uuid4().hex,
                {
                    "amount": 1_00 + (i % 50),
                    "currency": "CNY",
                    "payment_code": codes[n][i],
                    "operator_id": terminals[n]["operator"],
                    "latitude": "31.230400",
                    "longitude": "121.473700",
                },
            )
            outcome, detail = _send(clients[n], attempt)
            with lock:
                figures.sent += 1
                if outcome == "ok":
                    figures.succeeded += 1
                    succeeded_keys.add((n, attempt.key))
                elif outcome == "503":
                    figures.refused_503[detail] += 1
                    refused.append(attempt)
                elif outcome == "4xx":
                    figures.other_4xx[detail] += 1
                elif outcome == "5xx":
                    figures.other_5xx += 1
                    refused.append(attempt)
                elif outcome == "timeout":
                    figures.timeouts += 1
                    refused.append(attempt)  # its answer was lost: the key tells
                else:
                    figures.unverified += 1

    threads = [threading.Thread(target=terminal_loop, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _retry(
    clients: list[Any],
    refused: list[Attempt],
    figures: PhaseFigures,
    succeeded_keys: set[tuple[int, str]],
) -> None:
    """Every refused (or unanswered) payment again, same key and body,
    until it succeeds or RETRY_FOR_SECONDS pass."""
    for attempt in refused:
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        while True:
            outcome, _detail = _send(clients[attempt.terminal], attempt)
            if outcome == "ok":
                figures.retried_ok += 1
                succeeded_keys.add((attempt.terminal, attempt.key))
                break
            if time.monotonic() > deadline or outcome in {"4xx", "unverified"}:
                figures.retry_failed += 1
                break
            time.sleep(0.5)


def _terminate_backends(database: str) -> int:
    """pg_terminate_backend of every backend of the drill's own scratch
    database but this process's: never another database's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        return int(cursor.fetchone()[0])


def _fault(phase: str, seconds: float, redis: OwnRedis, worker: Worker, database: str) -> dict:
    """Runs the phase's fault on a thread while the terminals drive."""
    from django.db import connection

    notes: dict[str, Any] = {}

    def run() -> None:
        time.sleep(seconds * 0.15)
        if phase == "redis_down":
            redis.stop()
            time.sleep(seconds * 0.5)
            redis.start()
        elif phase == "redis_restart":
            redis.stop()
            redis.start()
        elif phase == "db_backends":
            killed = 0
            end = time.monotonic() + seconds * 0.6
            while time.monotonic() < end:
                killed += _terminate_backends(database)
                time.sleep(0.5)
            notes["backends_terminated"] = killed
            connection.close()
        elif phase == "worker_killed":
            worker.kill()
            time.sleep(seconds * 0.5)
            worker.start()

    thread = threading.Thread(target=run)
    thread.start()
    notes["thread"] = thread
    return notes


def _ledger_check(succeeded_keys: set[tuple[int, str]], clients: list[Any]) -> dict:
    from django.db.models import Count

    from apps.terminals.models import Terminal
    from apps.transactions.models import Payment
    from apps.transactions.selectors import ledger_integrity_problems

    problems = ledger_integrity_problems()
    ids = {c.terminal_id: n for n, c in enumerate(clients)}
    terminal_of = {t.pk: ids.get(str(t.public_id)) for t in Terminal.objects.all()}
    booked = {
        (terminal_of[p["terminal_id"]], p["idempotency_key"]): p["n"]
        for p in Payment.objects.values("terminal_id", "idempotency_key").annotate(n=Count("id"))
    }
    twice = sum(1 for n in booked.values() if n > 1)
    unanswered = len(set(booked) - succeeded_keys)  # booked but never told the terminal
    missing = len(succeeded_keys - set(booked))  # told success, but not booked
    return {
        "ledger_problems": problems[:5],
        "payments_booked": sum(booked.values()),
        "booked_twice": twice,
        "booked_but_never_answered": unanswered,
        "answered_but_not_booked": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=4)
    parser.add_argument("--rate", type=float, default=3.0, help="payments per second per terminal")
    parser.add_argument("--phase-seconds", type=float, default=8.0)
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/faults.py needs PostgreSQL: set DATABASE_URL")

    import tempfile

    with tempfile.TemporaryDirectory(prefix="anfu-faults-redis-") as redis_tmp:
        redis = OwnRedis(redis_tmp)
        redis.start()
        worker: Worker | None = None
        try:
            with served(
                "faults",
                workers=2,
                threads=4,
                extra_env={"REDIS_URL": redis.url, "CELERY_TASK_ALWAYS_EAGER": "0"},
            ) as server:
                worker = Worker(server.env)
                worker.start()
                report = _drill(server, redis, worker, options)
        finally:
            if worker is not None:
                worker.stop()
            redis.stop()
    _print(report, options)


def _drill(server: Any, redis: OwnRedis, worker: Worker, options: Any) -> dict:
    import requests
    from django.db import connections

    from apps.terminals.client import TerminalClient

    database = server.env["DATABASE_URL"].rsplit("/", 1)[1]
    terminals = _setup(server.base_url, server.tmp, options.terminals)
    clients = [TerminalClient(server.base_url, t["state"], timeout=15) for t in terminals]
    succeeded_keys: set[tuple[int, str]] = set()
    phases: dict[str, dict] = {}
    for phase in PHASES:
        figures, refused = PhaseFigures(), []
        notes = _fault(phase, options.phase_seconds, redis, worker, database)
        _drive(
            clients,
            terminals,
            options.phase_seconds,
            options.rate,
            figures,
            refused,
            succeeded_keys,
        )
        notes.pop("thread").join()
        # This process's own connection was terminated with the others.
        connections.close_all()
        _retry(clients, refused, figures, succeeded_keys)
        phases[phase] = figures.as_json() | notes
        print(f"{phase:14s} {json.dumps(phases[phase], ensure_ascii=False)}", flush=True)
    # The worker's heartbeat is back (it records one at start, then every 30 s).
    health: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = requests.get(server.base_url + "/healthz", timeout=10).json()
        if health.get("processes", {}).get("worker", {}).get("ok"):
            break
        time.sleep(1)
    return {
        "phases": phases,
        "ledger": _ledger_check(succeeded_keys, clients),
        "worker_seen_after_restart": bool(health.get("processes", {}).get("worker", {}).get("ok")),
        "healthz_checks_ok": all(c.get("ok") for c in health.get("checks", {}).values()),
    }


def _print(report: dict, options: Any) -> None:
    phases, ledger = report["phases"], report["ledger"]
    total = {
        key: sum(p[key] for p in phases.values())
        for key in ("sent", "succeeded", "other_5xx", "timeouts", "unverified")
    }
    total["refused_503"] = sum(sum(p["refused_503"].values()) for p in phases.values())
    total["retry_failed"] = sum(p["retry_failed"] for p in phases.values())
    print(
        f"{options.terminals} terminals x {options.rate}/s, {options.phase_seconds} s per phase: "
        f"{total['sent']} payments sent, {total['succeeded']} succeeded at once, "
        f"{total['refused_503']} refused with 503, {total['other_5xx']} other 5xx, "
        f"{total['timeouts']} timeouts, {total['unverified']} unverified answers, "
        f"{total['retry_failed']} refused payments not recovered by a retry"
    )
    print(
        f"ledger: problems {ledger['ledger_problems'] or 'none'}, {ledger['payments_booked']} "
        f"payments booked, {ledger['booked_twice']} booked twice, "
        f"{ledger['booked_but_never_answered']} booked but never answered, "
        f"{ledger['answered_but_not_booked']} answered but not booked; worker seen again: "
        f"{report['worker_seen_after_restart']}"
    )
    targets = {
        "other_5xx": 0,
        "timeouts": 0,
        "unverified": 0,
        "retry_failed": 0,
        "ledger_problems": 0,
        "booked_twice": 0,
        "booked_but_never_answered": 0,
        "answered_but_not_booked": 0,
        "worker_seen_after_restart": True,
    }
    figures = {
        **{k: total[k] for k in ("other_5xx", "timeouts", "unverified", "retry_failed")},
        "ledger_problems": len(ledger["ledger_problems"]),
        "booked_twice": ledger["booked_twice"],
        "booked_but_never_answered": ledger["booked_but_never_answered"],
        "answered_but_not_booked": ledger["answered_but_not_booked"],
        "worker_seen_after_restart": report["worker_seen_after_restart"],
    }
    met = all(figures[k] == v for k, v in targets.items())
    print(
        json.dumps(
            {
                "bench": "faults",
                "terminals": options.terminals,
                "rate_per_terminal": options.rate,
                "phase_seconds": options.phase_seconds,
                "phases": phases,
                "totals": total,
                "ledger": ledger,
                **figures,
                "targets": targets,
                "met": met,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()

"""Where an approved payment's server CPU goes, in-process (a tool, not a
benchmark: bench/payments.py is the measurement).

Sets up one merchant, terminal and funded payers in a scratch database
(PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set), then sends
signed POST /api/v1/terminal/payments straight into Django's WSGI handler,
with no HTTP server and no client in the way, and prints

- the CPU time per payment (thread time, averaged over --payments),
- the round trips to the database per payment (each statement Django runs,
  plus BEGIN and COMMIT),
- with --profile, the cProfile of those payments (cumulative, top --top).

    .venv/bin/python bench/payment_profile.py [--payments 300] [--profile] [--top 40]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import secrets
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import migrated  # noqa: E402


def _setup(payers: int) -> dict:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from apps.accounts.models import Membership, Merchant, Payer, Shop, User
    from apps.core.money import Money
    from apps.terminals.crypto import b64, ed25519_public_raw
    from apps.terminals.services import terminal_activate, terminal_register
    from apps.transactions.services import wallet_top_up

    merchant = Merchant.objects.create(
        name="Profile merchant", status=Merchant.Status.ACTIVE, mcc="5812", discount_rate_bp=38
    )
    shop = Shop.objects.create(
        merchant=merchant, name="shop", address="x", latitude="31.2304", longitude="121.4737"
    )
    user = User.objects.create_user(f"op-{uuid.uuid4().hex[:8]}@bench.test", None)
    operator = Membership.objects.create(merchant=merchant, user=user, role="cashier")
    terminal, code = terminal_register(
        merchant=merchant, shop=shop, serial_number="PROFILE-1", actor=user
    )
    private_key = ed25519.Ed25519PrivateKey.generate()
    terminal_activate(code=code, public_key_b64=b64(ed25519_public_raw(private_key)))
    payer_ids = []
    for _ in range(payers):
        payer_user = User.objects.create_user(f"payer-{uuid.uuid4().hex[:10]}@bench.test", None)
        payer = Payer.objects.create(user=payer_user, account_class=Payer.AccountClass.CLASS_III)
        wallet_top_up(payer=payer, amount=Money(10**12), reason="profile funding", actor="bench")
        payer_ids.append(payer.pk)
    return {
        "terminal_id": str(terminal.public_id),
        "private_key": private_key,
        "operator": str(operator.public_id),
        "payers": payer_ids,
        "merchant_id": merchant.pk,
    }


def _codes(payer_ids: list[int], count: int) -> list[str]:
    from datetime import timedelta

    from django.utils import timezone

    from apps.transactions.models import PaymentCode
    from apps.transactions.services import payment_code_hash

    now = timezone.now()
    codes, rows = [], []
    for i in range(count):
        code = "29" + f"{secrets.randbelow(10**16):016d}"
        codes.append(code)
        rows.append(
            PaymentCode(
                payer_id=payer_ids[i % len(payer_ids)],
                code_hash=payment_code_hash(code),
                created_at=now,
                expires_at=now + timedelta(seconds=60),
            )
        )
    PaymentCode.objects.bulk_create(rows)
    return codes


def _environ(setup: dict, code: str, amount: int) -> dict:
    import requests

    from apps.terminals.signing import request_sign

    body = json.dumps(
        {
            "amount": amount,
            "currency": "CNY",
            "payment_code": code,
            "operator_id": setup["operator"],
            "latitude": "31.230400",
            "longitude": "121.473700",
        },
        separators=(",", ":"),
    ).encode()
    prepared = requests.Request(
        "POST",
        "http://127.0.0.1/api/v1/terminal/payments",
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    ).prepare()
    request_sign(prepared, private_key=setup["private_key"], key_id=setup["terminal_id"], body=body)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/terminal/payments",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_HOST": "127.0.0.1",
    }
    for name, value in prepared.headers.items():
        if name.lower() in ("content-type", "content-length"):
            continue
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    options = parser.parse_args()

    with migrated("profile", extra_env={"CELERY_TASK_ALWAYS_EAGER": "1"}):
        from django.core.wsgi import get_wsgi_application
        from django.db import connection

        from apps.risk.services import risk_list_entry_add

        app = get_wsgi_application()
        setup = _setup(30)
        # A load test is a velocity anomaly by design (as in bench/payments.py).
        risk_list_entry_add(
            kind="allow",
            subject_type="merchant",
            subject_id=setup["merchant_id"],
            reason="profile",
            actor="bench",
            skip_rules=["velocity.payer", "velocity.terminal", "velocity.merchant"],
        )
        # Activation leaves the terminal's auth cache entry a tombstone for
        # a few seconds (selectors.AUTH_CACHE_SECONDS): measure after it.
        time.sleep(6)
        statuses: dict[str, int] = {}

        def start_response(status: str, headers: list) -> None:
            statuses[status] = statuses.get(status, 0) + 1

        def run(count: int) -> list[float]:
            codes = _codes(setup["payers"], count)
            environs = [_environ(setup, code, 1000 + i) for i, code in enumerate(codes)]
            cpu = []
            for environ in environs:
                started = time.thread_time()
                b"".join(app(environ, start_response))
                cpu.append(time.thread_time() - started)
            return cpu

        run(20)  # warm-up: connections, caches, imports
        statements = []

        def counting(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            run(10)
        per_payment = len(statements) / 10
        statuses.clear()
        profiler = cProfile.Profile(time.thread_time) if options.profile else None
        if profiler:
            profiler.enable()
        cpu = run(options.payments)
        if profiler:
            profiler.disable()
        cpu_ms = sum(cpu) / len(cpu) * 1000
        print(f"statuses {statuses}")
        print(f"CPU per payment {cpu_ms:.2f} ms (in-process, no HTTP server or client)")
        print(f"statements per payment (BEGIN and COMMIT not included): {per_payment:.1f}")
        for sql in statements[: int(per_payment)]:
            print("   ", sql[:160].replace("\n", " "))
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(options.top)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(options.top)
            print(out.getvalue())
        print(
            json.dumps(
                {
                    "payment_cpu_ms_in_process": round(cpu_ms, 3),
                    "statements_per_payment": per_payment + 2,
                    "statuses": statuses,
                    "profiled": bool(profiler),
                }
            )
        )


if __name__ == "__main__":
    main()

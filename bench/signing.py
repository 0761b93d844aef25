"""What request and response signing cost (DESIGN.md §5).

Starts gunicorn on 127.0.0.1 with the terminal API, activates a terminal,
then drives over real HTTP the signed no-op GET /api/v1/terminal/ping
(request signed by the terminal and verified by the server, answer signed
by the server and verified by the client) and its unsigned twin
GET /api/v1/bench/ping (TERMINAL_BENCH_ENDPOINTS=1). It also times the
server-side verification of one signed request in-process.

    .venv/bin/python bench/signing.py [--seconds 8] [--rounds 8] [--slice 0.5] [--clients 4] [--workers 2]

The two modes take turns inside each round's window, in slices of
`--slice` seconds (unsigned, signed, signed, unsigned, ...), so both see
the same machine: a shared machine's speed comes and goes over seconds to
minutes, and a mode measured alone for a whole window records when that
happened as much as what signing costs. A request is of the mode of the
slice it is sent in and takes with it its client's time until the next
send, so one that straddles a turn counts with the time it took. The
overhead compares the two modes' throughput over the whole run (every
slice of every round: signed_rps against unsigned_rps). Each round's own
figure is printed too, and from their spread a 95 % interval for the
overhead (Student's t): on a shared machine one run's figure is only as
good as that interval. The figure from CPU per request (what throughput
would be on a machine the bench had to itself) is printed beside it, and
the same from the gunicorn processes' CPU alone: the overhead of a server
whose load comes from other machines, undiluted by the clients' CPU
(about half of this machine's, and nearly alike in both modes).

Database: a scratch PostgreSQL database (created and dropped) on the server
DATABASE_URL names, when set; else a temporary SQLite file. REDIS_URL, when set,
holds the replay cache and rate limits, as in production. Stops by itself;
the last line is JSON with every figure and its target.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import process_cpu_seconds, served  # noqa: E402

TARGET_OVERHEAD_PCT = 15.0
# Student's t for a two-sided 95 % interval, by degrees of freedom (beyond
# the table, the value for 20: wider than the true one, never narrower).
_T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
    16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
}  # fmt: skip


def _interval_95(values: list[float]) -> tuple[float, float]:
    """A 95 % interval for the mean of `values` (independent rounds)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    half = _T_975.get(len(values) - 1, _T_975[20]) * statistics.stdev(values) / len(values) ** 0.5
    return mean - half, mean + half


def _setup_terminal() -> str:
    """An active merchant with a shop and a registered terminal; its code."""
    from apps.accounts.models import Merchant, Shop, User
    from apps.terminals.services import terminal_register

    merchant = Merchant.objects.create(name="Bench merchant", status=Merchant.Status.ACTIVE)
    shop = Shop.objects.create(
        merchant=merchant,
        name="Bench shop",
        address="bench",
        latitude="31.2304",
        longitude="121.4737",
    )
    actor = User.objects.create_user(f"bench-{time.time_ns()}@bench.test", None)
    _terminal, code = terminal_register(
        merchant=merchant, shop=shop, serial_number=f"BENCH-{time.time_ns()}", actor=actor
    )
    return code


def _verify_cost(state_path: str, iterations: int) -> tuple[float, float]:
    """Server-side µs per verification (parse + Ed25519 verify + digest) and
    per response signature, in-process, without HTTP or database."""
    import requests
    from django.http import HttpResponse
    from django.test import RequestFactory

    from apps.terminals.api.messages import DjangoRequestMessage, DjangoResponseMessage
    from apps.terminals.client import TerminalClient
    from apps.terminals.crypto import (
        ed25519_public_key,
        server_signing_keys,
    )
    from apps.terminals.signing import (
        request_sign,
        request_signature_input_parse,
        request_verify,
        request_verify_parsed,
        response_sign,
    )

    client = TerminalClient("http://127.0.0.1", state_path)
    body = json.dumps({"latitude": "31.2304", "longitude": "121.4737"}).encode()
    prepared = requests.Request(
        "POST",
        "http://127.0.0.1/api/v1/terminal/heartbeat",
        data=body,
        headers={"Content-Type": "application/json"},
    ).prepare()
    request_sign(prepared, private_key=client.private_key, key_id=client.terminal_id, body=body)
    django_request = RequestFactory().post(
        "/api/v1/terminal/heartbeat",
        data=body,
        content_type="application/json",
        SERVER_NAME="127.0.0.1",
        **{
            f"HTTP_{k.upper().replace('-', '_')}": v
            for k, v in prepared.headers.items()
            if k.lower() not in ("content-type", "content-length")
        },
    )
    public_keys = [ed25519_public_key(client.public_key_b64)]
    # What the server runs (apps/terminals/api/auth.py): one parse, the
    # direct signature base, Ed25519, Content-Digest.
    started = time.perf_counter()
    for _ in range(iterations):
        parsed = request_signature_input_parse(django_request.headers, has_body=True)
        request_verify_parsed(
            DjangoRequestMessage(django_request),
            parsed,
            public_keys=[client.public_key_b64],
            body=django_request.body,
            skew_seconds=300,
        )
    verify_us = (time.perf_counter() - started) / iterations * 1e6
    # The library's own verification (the reference the fast path is
    # tested against), for comparison.
    started = time.perf_counter()
    for _ in range(iterations):
        parsed = request_signature_input_parse(django_request.headers, has_body=True)
        request_verify(
            DjangoRequestMessage(django_request),
            key_id=parsed.key_id,
            public_keys=public_keys,
            body=django_request.body,
            skew_seconds=300,
        )
    library_verify_us = (time.perf_counter() - started) / iterations * 1e6
    key = server_signing_keys()[0]
    started = time.perf_counter()
    for _ in range(iterations):
        response = HttpResponse(b'{"ok":true}', content_type="application/json")
        response_sign(
            DjangoResponseMessage(response, DjangoRequestMessage(django_request, with_url=False)),
            private_key=key.sodium_key,
            key_id=key.key_id,
            body=response.content,
        )
    sign_us = (time.perf_counter() - started) / iterations * 1e6
    return verify_us, sign_us, library_verify_us


def _server_cost(state_path: str, iterations: int) -> tuple[float, float]:
    """Server-side µs per request, in-process (Django's test client: no
    network, no client-side work): the unsigned no-op and the signed one
    (verification, terminal lookup, nonce, rate limit, response signature)."""
    import requests
    from django.test import Client

    from apps.terminals.client import TerminalClient
    from apps.terminals.signing import request_sign

    client = TerminalClient("http://127.0.0.1", state_path)
    django_client = Client()
    batch = 50
    signed_headers = []
    for _ in range(iterations + batch):
        prepared = requests.Request("GET", "http://127.0.0.1/api/v1/terminal/ping").prepare()
        request_sign(prepared, private_key=client.private_key, key_id=client.terminal_id, body=None)
        signed_headers.append({k: prepared.headers[k] for k in ("Signature", "Signature-Input")})

    def unsigned() -> None:
        django_client.get("/api/v1/bench/ping", SERVER_NAME="127.0.0.1")

    def signed() -> None:
        response = django_client.get(
            "/api/v1/terminal/ping", headers=signed_headers.pop(), SERVER_NAME="127.0.0.1"
        )
        if response.status_code != 200:
            raise SystemExit(f"signed ping failed in-process: {response.content!r}")

    # Alternating batches, the first of each a warm-up (imports, caches), so
    # neither mode is measured cold or under different machine noise.
    elapsed = {unsigned: 0.0, signed: 0.0}
    for index in range(iterations // batch + 1):
        for run in (unsigned, signed):
            started = time.perf_counter()
            for _ in range(batch):
                run()
            if index:
                elapsed[run] += time.perf_counter() - started
    counted = iterations // batch * batch
    return elapsed[unsigned] / counted * 1e6, elapsed[signed] / counted * 1e6


def _worker_cpu_ms(response: Any) -> float | None:
    """The worker's CPU time for this request (Server-Timing `cpu`, added
    outside the response signature by the bench endpoints' middleware)."""
    for part in response.headers.get("Server-Timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "cpu" and dur:
            return float(dur)
    return None


_MODES = ("unsigned", "signed")
# The order of the slices, repeated: each mode follows each as often, so a
# trend in the machine's speed favours neither.
_PATTERN = ("unsigned", "signed", "signed", "unsigned")


def _slice_mode(now: float, start_at: float, slice_seconds: float) -> str:
    return _PATTERN[int((now - start_at) / slice_seconds) % len(_PATTERN)]


def _load(args: tuple) -> dict[str, tuple[int, int, list[float], float]]:
    """One client process: requests back to back from `start_at` to `end_at`
    (time.monotonic(), one clock for every process on Linux, so the
    clients' windows and slices coincide), each of the mode of the slice it
    is sent in; per mode, (answers ok, errors, worker CPU ms of each,
    seconds this client spent on the mode's requests).

    The load generator shares the server's two cores, so it does as little
    as it can inside the window, the same in both modes: every request is
    prepared before the window opens (a signed one is also signed there,
    with its own nonce, well inside the 300 s window) and every answer's
    signature is verified after the window closes, for every client at
    once; an answer that does not verify counts as an error. Terminals in
    the field sign and verify on their own CPUs."""
    base_url, state_path, start_at, end_at, slice_seconds, batch = args
    import requests

    from apps.terminals.client import TerminalClient, UntrustedResponse

    client = TerminalClient(base_url, state_path)
    session = requests.Session()
    urls = {
        "signed": base_url + "/api/v1/terminal/ping",
        "unsigned": base_url + "/api/v1/bench/ping",
    }
    prepared = {
        mode: [_prepared(mode, urls[mode], client) for _ in range(batch)] for mode in _MODES
    }
    # RuntimeError, not SystemExit: a pool worker that exits never answers.
    if time.monotonic() > start_at:
        raise RuntimeError("preparing the requests overran the start; raise --lead")
    time.sleep(start_at - time.monotonic())
    answers: list[tuple[str, requests.Response | None]] = []
    # When each request was sent, and when the last answer came: the
    # client's time from one send to the next belongs to the first
    # request's mode, so a request that straddles a turn counts with the
    # time it took, in its own mode.
    sent_at: list[float] = []
    while (now := time.monotonic()) < end_at:
        mode = _slice_mode(now, start_at, slice_seconds)
        if not prepared[mode]:
            raise RuntimeError("a client ran out of prepared requests; raise --headroom")
        sent_at.append(now)
        try:
            answers.append((mode, session.send(prepared[mode].pop(), timeout=10)))
        except requests.RequestException:  # a bench counts failures, it does not stop on them
            answers.append((mode, None))
    sent_at.append(time.monotonic())
    time.sleep(max(0.0, end_at - time.monotonic()))
    counts = {mode: [0, 0, [], 0.0] for mode in _MODES}
    for index, (mode, answer) in enumerate(answers):
        count = counts[mode]
        count[3] += sent_at[index + 1] - sent_at[index]
        if answer is None:
            count[1] += 1
            continue
        if mode == "signed":
            try:
                client.verify_response(answer)
            except UntrustedResponse:
                count[1] += 1
                continue
        if (ms := _worker_cpu_ms(answer)) is not None:
            count[2].append(ms)
        if answer.status_code == 200:
            count[0] += 1
        else:
            count[1] += 1
    return {mode: tuple(count) for mode, count in counts.items()}


def _prepared(mode: str, url: str, client: Any) -> Any:
    """One request ready to send: signed, with its own nonce, in signed mode."""
    import requests

    from apps.terminals.signing import request_sign

    request = requests.Request("GET", url, headers={"Accept": "application/json"}).prepare()
    if mode == "signed":
        request_sign(request, private_key=client.private_key, key_id=client.terminal_id, body=None)
    return request


def _preparation_seconds(base_url: str, state_path: str, batch: int, clients: int) -> float:
    """Seconds the clients need to prepare `batch` requests of each mode on
    this machine's cores (measured here on 100 of each), with room for a
    slow moment: the lead each round gives them."""
    import os

    from apps.terminals.client import TerminalClient

    client = TerminalClient(base_url, state_path)
    started = time.perf_counter()
    for _ in range(100):
        _prepared("signed", base_url + "/api/v1/terminal/ping", client)
        _prepared("unsigned", base_url + "/api/v1/bench/ping", client)
    pair = (time.perf_counter() - started) / 100
    return 1.0 + 2.0 * pair * batch * clients / max(1, min(clients, os.cpu_count() or 1))


_PARTS = ("workers", "clients", "redis")


def _part_pids(gunicorn_pid: int, redis_url: str | None) -> dict[str, tuple[list[int], list[int]]]:
    """(pids, parents whose children count) of each part: the gunicorn
    master and its workers, this bench's client processes, Redis."""
    parts = {
        "workers": ([gunicorn_pid], [gunicorn_pid]),
        "clients": ([p.pid for p in multiprocessing.active_children()], []),
        "redis": ([], []),
    }
    if redis_url:
        import redis

        parts["redis"] = ([int(redis.Redis.from_url(redis_url).info("server")["process_id"])], [])
    return parts


def _parts_cpu(parts: dict[str, tuple[list[int], list[int]]]) -> dict[str, float]:
    return {
        name: process_cpu_seconds(pids, with_children_of=parents)
        for name, (pids, parents) in parts.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="seconds of each mode in each round"
    )
    parser.add_argument("--rounds", type=int, default=8, help="rounds (windows)")
    parser.add_argument(
        "--slice", type=float, default=0.5, help="seconds of one mode before the other's turn"
    )
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--verify-iterations", type=int, default=2000)
    parser.add_argument(
        "--lead",
        type=float,
        default=0.0,
        help="seconds the clients get to prepare each round (default: measured)",
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=2.5,
        help="requests each client prepares per round, as a multiple of what it sent in the warm-up",
    )
    options = parser.parse_args()
    slices = round(2 * options.seconds / options.slice)
    if slices % len(_PATTERN) or abs(slices * options.slice - 2 * options.seconds) > 1e-9:
        parser.error(f"2 x --seconds must be a multiple of {len(_PATTERN)} x --slice")

    with served(
        "signing", workers=options.workers, extra_env={"CELERY_TASK_ALWAYS_EAGER": "1"}
    ) as server:
        base_url, env, tmp = server.base_url, server.env, server.tmp
        code = _setup_terminal()
        from apps.terminals.client import TerminalClient

        state_path = f"{tmp}/pos.json"
        TerminalClient(base_url, state_path).activate(code)
        activated = time.monotonic()
        verify_us, sign_us, library_verify_us = _verify_cost(state_path, options.verify_iterations)
        # Activation leaves a short-lived tombstone in the auth cache (a
        # status change), during which every request reads the database;
        # measure the steady state a working terminal is in.
        from apps.terminals.selectors import _TOMBSTONE_SECONDS

        time.sleep(max(0.0, activated + _TOMBSTONE_SECONDS + 0.5 - time.monotonic()))
        server_unsigned_us, server_signed_us = _server_cost(
            state_path, options.verify_iterations // 4
        )

        totals = {"signed": [0, 0, 0.0], "unsigned": [0, 0, 0.0]}
        per_round: dict[str, list[float]] = {"signed": [], "unsigned": []}
        cpu: dict[str, list[float]] = {"signed": [], "unsigned": []}

        lead = options.lead or 6.0

        def window(seconds: float) -> tuple[float, float]:
            start_at = time.monotonic() + lead
            return start_at, start_at + seconds

        # CPU seconds each part of the machine spent in each mode's slices,
        # and the seconds sampled: where a signed request's extra cost lands.
        spent = {m: dict.fromkeys((*_PARTS, "sampled"), 0.0) for m in _MODES}
        with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
            # The warm-up sizes every round's batches of prepared requests
            # (from the faster mode's rate), and the lead to prepare them.
            warmup, warmup_slice = 2.0, 0.5
            sent = pool.map(
                _load,
                [(base_url, state_path, *window(warmup), warmup_slice, 600)] * options.clients,
            )
            rate = max(sum(r["unsigned"][:2]) for r in sent) / (warmup / 2)
            batch = int(rate * options.seconds * options.headroom)
            lead = options.lead or _preparation_seconds(
                base_url, state_path, batch, options.clients
            )
            print(
                f"each client prepares {batch} requests of each mode per round, "
                f"in a lead of {lead:.1f} s"
            )
            parts = _part_pids(server.pid, env.get("REDIS_URL"))
            for _round in range(options.rounds):
                start_at, end_at = window(2 * options.seconds)
                running = pool.map_async(
                    _load,
                    [(base_url, state_path, start_at, end_at, options.slice, batch)]
                    * options.clients,
                )
                before = None
                for index in range(slices + 1):
                    time.sleep(max(0.0, start_at + index * options.slice - time.monotonic()))
                    now = _parts_cpu(parts)
                    if before is not None:
                        mode = _PATTERN[(index - 1) % len(_PATTERN)]
                        for part, seconds in now.items():
                            spent[mode][part] += seconds - before[part]
                        spent[mode]["sampled"] += options.slice
                    before = now
                results = running.get()
                for mode in _MODES:
                    ok = sum(r[mode][0] for r in results)
                    # The clients' seconds on this mode, per client: the
                    # window's share the mode had.
                    seconds = sum(r[mode][3] for r in results) / options.clients
                    per_round[mode].append(ok / seconds)
                    totals[mode][0] += ok
                    totals[mode][1] += sum(r[mode][1] for r in results)
                    totals[mode][2] += seconds
                    cpu[mode] += [ms for r in results for ms in r[mode][2]]

    signed_rps = totals["signed"][0] / totals["signed"][2]
    unsigned_rps = totals["unsigned"][0] / totals["unsigned"][2]
    overhead_pct = (1 - signed_rps / unsigned_rps) * 100 if unsigned_rps else 100.0
    round_overheads = [
        (1 - signed / unsigned) * 100 if unsigned else 100.0
        for unsigned, signed in zip(per_round["unsigned"], per_round["signed"], strict=True)
    ]
    median_overhead_pct = statistics.median(round_overheads)
    low_pct, high_pct = _interval_95(round_overheads)
    database = server.database
    print(
        f"database {database}, replay cache {'redis' if env.get('REDIS_URL') else 'database'}, "
        f"{options.workers} gunicorn workers, {options.clients} client processes, "
        f"{options.rounds} rounds of {options.seconds:g} s per mode, in turns of {options.slice:g} s"
    )
    print(f"unsigned  {unsigned_rps:8.1f} req/s  ({totals['unsigned'][1]} errors)")
    print(
        f"signed    {signed_rps:8.1f} req/s  ({totals['signed'][1]} errors; both directions signed and verified)"
    )
    for index, (unsigned, signed, overhead) in enumerate(
        zip(per_round["unsigned"], per_round["signed"], round_overheads, strict=True)
    ):
        print(
            f"  round {index + 1}: {unsigned:7.1f} unsigned, {signed:7.1f} signed, {overhead:5.1f} %"
        )
    print(
        f"overhead  {overhead_pct:8.1f} %      (the whole run's throughputs; target < {TARGET_OVERHEAD_PCT:g} %)"
    )
    print(
        f"  rounds: mean {statistics.fmean(round_overheads):.1f} %, 95 % interval "
        f"{low_pct:.1f} to {high_pct:.1f} %, median {median_overhead_pct:.1f} %"
    )
    print(
        f"server-side: {verify_us:.0f} µs per request verification "
        f"(the library's own: {library_verify_us:.0f} µs), {sign_us:.0f} µs per response signature"
    )
    worker_cpu_us = {m: statistics.mean(v) * 1000 if v else 0.0 for m, v in cpu.items()}
    print(
        f"gunicorn workers' CPU per request under load: {worker_cpu_us['unsigned']:.0f} µs "
        f"unsigned, {worker_cpu_us['signed']:.0f} µs signed "
        f"(+{worker_cpu_us['signed'] - worker_cpu_us['unsigned']:.0f} µs)"
    )
    # Per request inside the windows: requests in the sampled seconds.
    part_us = {
        mode: {
            part: round(spent[mode][part] / (rps * spent[mode]["sampled"]) * 1e6) for part in _PARTS
        }
        for mode, rps in (("unsigned", unsigned_rps), ("signed", signed_rps))
    }
    print(
        "CPU per request inside the windows (µs): "
        + ", ".join(
            f"{part} {part_us['unsigned'][part]} unsigned, {part_us['signed'][part]} signed"
            for part in _PARTS
        )
    )
    # Throughput where the bench has the machine to itself: the inverse of
    # the CPU all its parts spend per request.
    cpu_overhead_pct = (
        1 - sum(part_us["unsigned"].values()) / sum(part_us["signed"].values())
    ) * 100
    print(f"overhead from CPU per request: {cpu_overhead_pct:.1f} %")
    # The gunicorn processes alone: load generated elsewhere.
    server_only_overhead_pct = (
        1 - part_us["unsigned"]["workers"] / part_us["signed"]["workers"]
    ) * 100
    print(
        f"overhead from the workers' CPU alone (load generated elsewhere): "
        f"{server_only_overhead_pct:.1f} %"
    )
    server_overhead_pct = (1 - server_unsigned_us / server_signed_us) * 100
    print(
        f"server-side, in-process: {server_unsigned_us:.0f} µs unsigned, {server_signed_us:.0f} µs signed "
        f"({server_overhead_pct:.1f} % of a signed request's server time is signing)"
    )
    print(
        json.dumps(
            {
                "signed_rps": round(signed_rps, 1),
                "unsigned_rps": round(unsigned_rps, 1),
                "overhead_pct": round(overhead_pct, 1),
                "round_overhead_pct": [round(o, 1) for o in round_overheads],
                "median_round_overhead_pct": round(median_overhead_pct, 1),
                "overhead_ci95_pct": [round(low_pct, 1), round(high_pct, 1)],
                "cpu_overhead_pct": round(cpu_overhead_pct, 1),
                "server_only_overhead_pct": round(server_only_overhead_pct, 1),
                "verify_us": round(verify_us, 1),
                "library_verify_us": round(library_verify_us, 1),
                "response_sign_us": round(sign_us, 1),
                "server_unsigned_us": round(server_unsigned_us, 1),
                "server_signed_us": round(server_signed_us, 1),
                "server_overhead_pct": round(server_overhead_pct, 1),
                "worker_cpu_unsigned_us": round(worker_cpu_us["unsigned"], 1),
                "worker_cpu_signed_us": round(worker_cpu_us["signed"], 1),
                "cpu_per_request_us": part_us,
                "errors": totals["signed"][1] + totals["unsigned"][1],
                "database": database,
                "replay_cache": "redis" if env.get("REDIS_URL") else "database",
                "targets": {"overhead_pct_max": TARGET_OVERHEAD_PCT},
                "overhead_within_target": overhead_pct < TARGET_OVERHEAD_PCT,
                "overhead_ci95_within_target": high_pct < TARGET_OVERHEAD_PCT,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Times an encrypted backup and its restore against plain pg_dump -Fc and
pg_restore on the same PostgreSQL database, and measures the backup
process's peak memory at 1x and 2x the database size (DESIGN.md §9).

    .venv/bin/python bench/backup.py [--gb 1.0] [--server postgres://postgres@127.0.0.1:5432]

It creates a scratch database anfu_benchbk_<random>, migrates it, fills a
table with generated rows until the database reaches --gb, and drops
everything afterwards. The backup goes to a filesystem target; the backup
and restore run as `manage.py backup ...` subprocesses, so their time
includes what an operator waits for (start-up, the checksum read-back and
the pre-restore verification pass), and their peak RSS is the process's own
(from wait4; pg_dump/pg_restore children are counted too if larger).

Prints the figures, then one line of JSON with every figure and its target.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "backup_vs_pg_dump": 1.3,
    "restore_vs_pg_restore": 1.3,
    "peak_rss_mb": 150,
    "rss_2x_vs_1x": 1.0,
}
# Generated rows: a payment-like record; the memo is partly repetitive text,
# partly random hex, so it compresses about as well as real data does.
FILL_SQL = """
INSERT INTO bench_payment (id, account, amount, currency, memo, created_at)
SELECT i, md5(i::text)::uuid, (i * 7919) %% 1000000, 'CNY',
       'payment at shop ' || (i %% 5000) || ' ref ' || md5((i * 31)::text),
       timestamptz '2026-01-01' + (i %% 31536000) * interval '1 second'
FROM generate_series(%s::bigint, %s::bigint) AS i
"""
CHUNK_ROWS = 1_000_000


def _psql(url: str, sql: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def _fill_to(url: str, target_bytes: int, next_id: int) -> int:
    """Adds rows until the database is at least target_bytes; returns the next id."""
    while _psql(url, "SELECT pg_database_size(current_database())")[0][0] < target_bytes:
        _psql(url, FILL_SQL, next_id, next_id + CHUNK_ROWS - 1)
        next_id += CHUNK_ROWS
    _psql(url, "VACUUM ANALYZE bench_payment")
    return next_id


def _run_measured(cmd: list[str], env: dict) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Read the pipes on threads so a chatty child never blocks, and reap it
    # ourselves with wait4 to get its own peak RSS.
    chunks: dict[str, bytes] = {}

    def drain(name: str, pipe) -> None:
        chunks[name] = pipe.read()

    readers = [
        threading.Thread(target=drain, args=(n, p))
        for n, p in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        out = chunks.get("out", b"").decode(errors="replace")[-2000:]
        err = chunks.get("err", b"").decode(errors="replace")[-4000:]
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{out}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gb", type=float, default=1.0, help="database size for the 1x run (default 1.0)"
    )
    parser.add_argument(
        "--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL"
    )
    args = parser.parse_args()

    from pyrage import x25519

    tag = secrets.token_hex(3)
    names = {k: f"anfu_benchbk_{tag}_{k}" for k in ("live", "restore", "plain")}
    urls = {k: f"{args.server}/{n}" for k, n in names.items()}
    workdir = Path(tempfile.mkdtemp(prefix="anfu-bench-backup-"))
    identity = x25519.Identity.generate()
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": urls["live"],
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "ANFU_VAR_DIR": str(workdir / "var"),
        "BACKUP_TARGETS": f"file://{workdir}/target",
        "BACKUP_SPOOL_DIR": str(workdir / "spool"),
        "BACKUP_AGE_RECIPIENTS": str(identity.to_public()),
        "BACKUP_AGE_IDENTITY": str(identity),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    pg_env = {**os.environ}
    target_bytes = int(args.gb * 1024**3)
    try:
        for name in names.values():
            _psql(f"{args.server}/postgres", f'CREATE DATABASE "{name}"')
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        _psql(
            urls["live"],
            "CREATE TABLE bench_payment (id bigint PRIMARY KEY, account uuid NOT NULL, amount bigint NOT NULL,"
            " currency char(3) NOT NULL, memo text NOT NULL, created_at timestamptz NOT NULL)",
        )
        started = time.perf_counter()
        next_id = _fill_to(urls["live"], target_bytes, 1)
        size_1x = _psql(urls["live"], "SELECT pg_database_size(current_database())")[0][0]
        print(
            f"database: {size_1x / 1024**3:.2f} GB ({next_id - 1:,} rows) filled in {time.perf_counter() - started:.0f}s"
        )

        backup_s, rss_1x = _run_measured([*manage, "backup", "create"], env)
        artifact = next((workdir / "target").glob("*.age"))
        print(
            f"encrypted backup: {backup_s:.1f}s, artifact {artifact.stat().st_size / 1024**2:.0f} MB, peak RSS {rss_1x:.0f} MB"
        )

        plain = workdir / "plain.dump"
        pg_dump_s, _ = _run_measured(
            ["pg_dump", "--format=custom", f"--file={plain}", f"--dbname={urls['live']}"], pg_env
        )
        print(f"plain pg_dump -Fc: {pg_dump_s:.1f}s, file {plain.stat().st_size / 1024**2:.0f} MB")

        restore_s, _ = _run_measured(
            [*manage, "backup", "restore", "latest", "--into", urls["restore"]], env
        )
        print(f"encrypted restore: {restore_s:.1f}s")
        pg_restore_s, _ = _run_measured(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                f"--dbname={urls['plain']}",
                str(plain),
            ],
            pg_env,
        )
        print(f"plain pg_restore: {pg_restore_s:.1f}s")
        restored = _psql(urls["restore"], "SELECT count(*) FROM bench_payment")[0][0]
        if restored != next_id - 1:
            raise SystemExit(f"restore lost rows: {restored} of {next_id - 1}")
        plain.unlink()
        for old in (workdir / "target").glob("*"):
            old.unlink()

        _fill_to(urls["live"], 2 * target_bytes, next_id)
        size_2x = _psql(urls["live"], "SELECT pg_database_size(current_database())")[0][0]
        backup_2x_s, rss_2x = _run_measured([*manage, "backup", "create"], env)
        print(
            f"2x database {size_2x / 1024**3:.2f} GB: backup {backup_2x_s:.1f}s, peak RSS {rss_2x:.0f} MB"
        )
    finally:
        for name in names.values():
            _psql(f"{args.server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    figures = {
        "db_gb": round(size_1x / 1024**3, 2),
        "db_gb_2x": round(size_2x / 1024**3, 2),
        "backup_s": round(backup_s, 1),
        "pg_dump_s": round(pg_dump_s, 1),
        "backup_ratio": round(backup_s / pg_dump_s, 2),
        "restore_s": round(restore_s, 1),
        "pg_restore_s": round(pg_restore_s, 1),
        "restore_ratio": round(restore_s / pg_restore_s, 2),
        "peak_rss_mb": round(rss_1x, 1),
        "peak_rss_mb_2x": round(rss_2x, 1),
        "backup_2x_s": round(backup_2x_s, 1),
        "targets": TARGETS,
    }
    figures["within_target"] = (
        figures["backup_ratio"] <= TARGETS["backup_vs_pg_dump"]
        and figures["restore_ratio"] <= TARGETS["restore_vs_pg_restore"]
        and figures["peak_rss_mb"] < TARGETS["peak_rss_mb"]
        # "No larger" for twice the data: allow 5% for allocator noise.
        and figures["peak_rss_mb_2x"] <= figures["peak_rss_mb"] * 1.05
    )
    print(
        f"backup {figures['backup_ratio']}x pg_dump (target <= 1.3), restore {figures['restore_ratio']}x "
        f"pg_restore (target <= 1.3), peak RSS {figures['peak_rss_mb']} MB / {figures['peak_rss_mb_2x']} MB at 2x "
        "(target < 150 MB, no larger at 2x)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

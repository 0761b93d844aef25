"""What the benchmarks share: a scratch database next to DATABASE_URL's, a
production-like environment, and gunicorn serving the project on a free
port of 127.0.0.1. Not a benchmark itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def recreate(admin_dsn: str, name: str, *, drop_only: bool = False) -> None:
    """Drops the database `name` (and creates it afresh unless drop_only)."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def scratch_postgres(url: str, name: str, *, create: bool) -> str:
    """A scratch database `anfu_bench_<name>_<pid>` on the server `url` names
    (created, or dropped), so a run never touches real data."""
    base, _database = url.rsplit("/", 1)
    scratch = f"anfu_bench_{name}_{os.getpid()}"
    recreate(f"{base}/postgres", scratch, drop_only=not create)
    return f"{base}/{scratch}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(tmp: str, name: str, extra: dict[str, str]) -> dict[str, str]:
    """The environment of the served project: the test suite's per-run random
    secrets, production settings (DEBUG off) with the limits out of the
    measurement's way, the bench's own views and figures (bench/settings.py),
    a scratch database."""
    import tests.testenv  # noqa: F401  (sets os.environ defaults)

    env = dict(os.environ)
    env.update(
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        RATE_LIMIT_API="100000000",
        TERMINAL_RATE_LIMIT="100000000",
        ANFU_VAR_DIR=tmp,
        DJANGO_SETTINGS_MODULE="bench.settings",
        CACHE_KEY_PREFIX=f"bench-{name}-{os.getpid()}",
    )
    env.update(extra)
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    if env["DATABASE_URL"].startswith("postgres"):
        env["DATABASE_URL"] = scratch_postgres(env["DATABASE_URL"], name, create=True)
    return env


@dataclass
class Served:
    base_url: str
    env: dict[str, str]
    tmp: str
    pid: int  # gunicorn's master; its workers are its children

    @property
    def database(self) -> str:
        return self.env["DATABASE_URL"].split(":", 1)[0]


@contextmanager
def migrated(name: str, *, extra_env: dict[str, str] | None = None) -> Iterator[Served]:
    """Migrates a scratch database and sets Django up in this process until
    the block ends; then drops the scratch database. (`pid` is this process.)"""
    with tempfile.TemporaryDirectory(prefix=f"anfu-bench-{name}-") as tmp:
        env = environment(tmp, name, extra_env or {})
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=600,
        )
        import django

        django.setup()
        try:
            yield Served("", env, tmp, os.getpid())
        finally:
            if env["DATABASE_URL"].startswith("postgres"):
                from django.db import connections

                connections.close_all()
                scratch_postgres(env["DATABASE_URL"], name, create=False)


@contextmanager
def served(
    name: str, *, workers: int, threads: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Migrates a scratch database, sets Django up in this process (for the
    bench's own setup) and serves the project with gunicorn until the block
    ends; then stops it and drops the scratch database."""
    with migrated(name, extra_env=extra_env) as prepared:
        env, tmp = prepared.env, prepared.tmp
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "config.wsgi",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "5",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            _wait_until_up(base_url)
            yield Served(base_url, env, tmp, server.pid)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def _wait_until_up(base_url: str) -> None:
    import requests

    for _ in range(150):
        try:
            if requests.get(base_url + "/api/v1/terminal/time", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def process_cpu_seconds(pids: list[int], *, with_children_of: list[int] = ()) -> float:
    """User + system CPU seconds the processes `pids` (and the live children
    of `with_children_of`) have used so far, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted, parents = set(pids), set(with_children_of)
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry) in wanted or int(fields[1]) in parents:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total

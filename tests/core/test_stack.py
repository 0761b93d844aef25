"""`make stack` (issue 19): gunicorn, a Celery worker and beat against the
PostgreSQL and Redis of the environment, prepared (migrations, static
manifest) with DEBUG off; /healthz sees the worker's and beat's heartbeats
and the scheduled heartbeat task; Ctrl-C stops every process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_stack_runs_web_worker_and_beat_and_stops_them_all_on_ctrl_c(tmp_path):
    scratch = f"anfu_stack_test_{os.getpid()}"
    admin = {**connection.get_connection_params(), "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_TASK_ALWAYS_EAGER"}}
    env.update(
        DEBUG="0",
        DATABASE_URL=settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + scratch,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        STATIC_MANIFEST="1",  # production's hashed names: collectstatic must have run
        ANFU_VAR_DIR=str(tmp_path),
        WORKER_HEARTBEAT_SECONDS="2",
        BEAT_HEARTBEAT_SECONDS="2",
        SCHEDULED_HEARTBEAT_SECONDS="3",
        # Its own cache key space in the suite's Redis database.
        CACHE_KEY_PREFIX=f"anfu-stack-{os.getpid()}",
    )
    stack = subprocess.Popen(
        ["make", "--no-print-directory", "stack", f"ADDR=127.0.0.1:{port}", "WEB_CONCURRENCY=1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    group = os.getpgid(stack.pid)
    health: dict = {}
    try:
        deadline = time.monotonic() + 240  # two shared cores: celery starts slowly
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
            except (requests.RequestException, ValueError):
                health = {}
            processes = health.get("processes", {})
            if all(
                processes.get(p, {}).get("ok") for p in ("worker", "beat", "scheduled_heartbeat")
            ):
                break
            assert stack.poll() is None, stack.stdout.read()
            time.sleep(1)
        assert health.get("status") == "ok", health
        assert health["checks"]["broker"]["mode"] == "broker"
        # Pages need the static manifest with DEBUG off: collectstatic ran.
        login = requests.get(f"http://127.0.0.1:{port}/login/", timeout=10)
        assert login.status_code == 200
        assert "/static/css/portal." in login.text
    finally:
        os.killpg(group, signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            output, _ = stack.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            output, _ = stack.communicate()
            pytest.fail("make stack did not stop on Ctrl-C:\n" + output[-3000:])
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    for name in ("web.1", "worker.1", "beat.1"):
        assert f"{name} " in output or f"{name}|" in output, output[-3000:]
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # no process of the stack is left

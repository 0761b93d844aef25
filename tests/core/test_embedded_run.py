"""`make run`'s path on a fresh machine: SQLite, no Redis, demo data, the
portal's login page served and healthy."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_embedded_platform_serves_the_portal_with_demo_data(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER"}
    }
    for secret in (
        "DJANGO_SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "BLIND_INDEX_KEY",
        "PAYMENT_PIN_PEPPER",
    ):
        env.pop(secret, None)  # make run uses the development values
    env.update(DEBUG="1", ANFU_VAR_DIR=str(tmp_path))
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    seeded = subprocess.run(
        [*manage, "seed_demo"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert "owner@lime.test" in seeded.stdout

    port = _free_port()
    server = subprocess.Popen(
        [*manage, "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/login/", timeout=2
                ) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        assert 'name="password"' in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = response.read().decode()
        assert '"in-process"' in health
        assert (tmp_path / "anfu.sqlite3").exists()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Periodic jobs run in-process" in output

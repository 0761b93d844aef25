"""A production-like instance (DEBUG off) with demo data to try it (issue
19): `migrate` and `seed_demo` work with real secrets when the operator asks
for demo data explicitly; development secrets are still refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "BLIND_INDEX_KEY",
    "PAYMENT_PIN_PEPPER",
    "TERMINAL_SIGNING_KEYS",
    "TERMINAL_ENCRYPTION_KEYS",
)


def production_env(tmp_path, **extra):
    """The suite's random secrets (tests/testenv.py), DEBUG off, the
    production defaults (https redirect, manifest static files) and an
    embedded database of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT", "DEMO_PASSWORD"}
        and not k.startswith("ANFU_ALLOW")
    }
    env.update(DEBUG="0", ANFU_VAR_DIR=str(tmp_path), ALLOWED_HOSTS="anfu.example")
    env.update(extra)
    return env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_migrate_refuses_development_secrets_with_debug_off(tmp_path):
    env = production_env(tmp_path)
    for name in SECRETS:
        env.pop(name)
    refused = manage(env, "migrate", "--no-input")
    assert refused.returncode != 0
    assert "Refusing to start with DEBUG off and development secrets" in refused.stderr


def test_with_debug_off_seed_demo_runs_only_when_asked_and_with_a_demo_password(tmp_path):
    env = production_env(tmp_path)
    migrated = manage(env, "migrate", "--no-input", "-v0")
    assert migrated.returncode == 0, migrated.stderr

    not_asked = manage(env, "seed_demo")
    assert not_asked.returncode != 0
    assert "only when asked explicitly" in not_asked.stderr

    published_password = manage(env, "seed_demo", "--allow-without-debug")
    assert published_password.returncode != 0
    assert "set DEMO_PASSWORD" in published_password.stderr

    env["DEMO_PASSWORD"] = "try-anfu-" + os.urandom(4).hex()
    seeded = manage(env, "seed_demo", "--allow-without-debug")
    assert seeded.returncode == 0, seeded.stderr
    assert "Demo data ready." in seeded.stdout
    # The demo's payments went through the signed terminal API in-process,
    # over https as the instance redirects http.
    assert "demo payments:" in seeded.stdout
    assert env["DEMO_PASSWORD"] in seeded.stdout

    by_environment = manage({**env, "ANFU_ALLOW_DEMO_SEED": "1"}, "seed_demo")
    assert by_environment.returncode == 0, by_environment.stderr

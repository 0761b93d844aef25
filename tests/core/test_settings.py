"""Production settings: `check --deploy` is clean, development secrets are refused."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The secrets production refuses to run without (DEBUG off).
SECRETS = ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "BLIND_INDEX_KEY", "PAYMENT_PIN_PEPPER")


def _production_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)  # the run's own random secrets (tests/testenv.py)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the browser tests only
    env.update(
        DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="pay.anfu.example",
        SECURE_SSL_REDIRECT="1",
        STATIC_MANIFEST="0",
    )
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_environment():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_with_debug_off_and_the_development_secret_key():
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "Refusing to start" in result.stderr


def test_it_refuses_a_development_secret_set_explicitly_with_debug_off():
    env = _production_env(PAYMENT_PIN_PEPPER="dev-insecure-payment-pin-pepper")
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "PAYMENT_PIN_PEPPER" in result.stderr


def test_development_secrets_are_accepted_with_debug_on():
    env = _production_env(DEBUG="1")
    for name in SECRETS:
        env.pop(name, None)
    assert _manage("check", env=env).returncode == 0


def test_a_malformed_boolean_stops_the_process():
    result = _manage("check", env=_production_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_code_only_commands_run_on_a_fresh_checkout_without_secrets():
    env = _production_env()
    for name in SECRETS:
        env.pop(name, None)
    result = _manage("makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
    # ... while anything that touches data still refuses.
    assert _manage("migrate", "--plan", env=env).returncode != 0

"""Health, request ids, logging, security headers and rate limits over HTTP."""

import io
import json
import logging
import time
from types import SimpleNamespace

import pytest
from django.test import override_settings

from apps.core.logging import JsonFormatter, RequestIdFilter
from tests.accounts.factories import TEST_PASSWORD


def test_healthz_reports_every_dependency(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert set(body["processes"]) == {"worker", "beat", "scheduled_heartbeat"}
    assert set(body["jobs"]) == {"balance_monitor", "detector_sweep", "backup"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.redis
def test_healthz_reaches_the_real_broker_when_redis_is_configured(client, db):
    assert client.get("/healthz").json()["checks"]["broker"]["mode"] == "broker"


def test_every_response_carries_a_request_id(client, db):
    first = client.get("/login/")["X-Request-ID"]
    second = client.get("/login/")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_a_sane_client_request_id_is_kept_and_a_malformed_one_replaced(client, db):
    assert (
        client.get("/login/", headers={"X-Request-ID": "pos-7f3a9c21"})["X-Request-ID"]
        == "pos-7f3a9c21"
    )
    replaced = client.get("/login/", headers={"X-Request-ID": "bad id\nwith newline"})[
        "X-Request-ID"
    ]
    assert replaced != "bad id\nwith newline"
    assert len(replaced) == 32


def test_log_lines_are_json_and_carry_the_request_id(client, db):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client.get("/no-such-page/", headers={"X-Request-ID": "trace-12345678"})
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(
        line["request_id"] == "trace-12345678" and "Not Found" in line["msg"] for line in lines
    )


def test_api_errors_have_the_one_error_shape(client, db):
    response = client.get("/api/v1/no-such-endpoint", headers={"X-Request-ID": "trace-abcdefgh"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "request_id": "trace-abcdefgh"}
    }


def test_security_headers_are_strict(client, db):
    response = client.get("/login/", secure=True)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_session_and_csrf_cookies_are_secure_and_http_only(client, owner):
    csrf = client.get("/login/", secure=True).cookies["csrftoken"]
    assert csrf["secure"]
    assert csrf["httponly"]
    response = client.post(
        "/login/", {"username": owner.email, "password": TEST_PASSWORD}, secure=True
    )
    session = response.cookies["sessionid"]
    assert session["secure"]
    assert session["httponly"]
    assert session["samesite"] == "Lax"


def test_the_portal_uses_csrf_protection(db, owner):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": owner.email, "password": "x"})
    assert response.status_code == 403


@override_settings(RATE_LIMITS={"login": (3, 60), "api": (5, 60)})
def test_login_attempts_beyond_the_limit_get_429_with_retry_after(client, db, monkeypatch):
    # The limit counts per fixed minute: every attempt falls in the middle of
    # one, however slowly the machine runs them (else a minute could end
    # between them and start the count afresh).
    now = time.time()
    in_one_window = now - now % 60 + 30
    monkeypatch.setattr("apps.core.ratelimit.time", SimpleNamespace(time=lambda: in_one_window))
    statuses = [
        client.post("/login/", {"username": "a@b.test", "password": "wrong"}).status_code
        for _ in range(4)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    retry_after = int(
        client.post("/login/", {"username": "a@b.test", "password": "x"})["Retry-After"]
    )
    assert 1 <= retry_after <= 60


@override_settings(RATE_LIMITS={"login": (3, 60), "api": (5, 60)})
def test_api_requests_beyond_the_limit_get_a_json_429(client, db):
    for _ in range(5):
        assert client.get("/api/v1/merchant/staff/").status_code != 429
    response = client.get("/api/v1/merchant/staff/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


@override_settings(RATE_LIMITS={"login": (3, 60), "api": (5, 60)})
def test_rate_limits_are_per_client_ip(client, db):
    for _ in range(4):
        client.post("/login/", {"username": "a@b.test", "password": "x"}, REMOTE_ADDR="10.0.0.1")
    assert (
        client.post(
            "/login/", {"username": "a@b.test", "password": "x"}, REMOTE_ADDR="10.0.0.1"
        ).status_code
        == 429
    )
    assert (
        client.post(
            "/login/", {"username": "a@b.test", "password": "x"}, REMOTE_ADDR="10.0.0.2"
        ).status_code
        == 200
    )


@override_settings(SESSION_IDLE_SECONDS=60)
def test_an_idle_session_is_logged_out(client, owner):
    client.force_login(owner)
    assert client.get("/").status_code == 200
    session = client.session
    session["_last_seen"] = session["_last_seen"] - 61
    session.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

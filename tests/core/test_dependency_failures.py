"""What the wallet API, the portal and the admin answer while a part of the
platform is down (issue 19): a 503 naming the part, never a 500 or a
traceback; the API's error object, or a plain page in the user's language.
Real HTTP to live_server; the outage is this test's own (the cache pointed
at a closed port, or the test database refusing connections)."""

from __future__ import annotations

import logging
import socket

import pytest
import redis
import requests
from django.db import DatabaseError, IntegrityError, OperationalError, connection, connections
from kombu import Connection

from apps.core.dependencies import BROKER, DATABASE, REDIS, failed_dependency
from tests.transactions.test_outages import database_refusing_connections


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """The cache at a port where nothing listens. Each request below opens
    its own connection, so the server handles it on a fresh thread (with a
    fresh Redis connection)."""
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_wallet_api_answers_503_naming_redis(live_server, redis_down):
    response = requests.post(
        live_server.url + "/api/v1/wallet/login",
        json={"email": "payer@example.test", "password": "x"},
        timeout=10,
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["param"] == "redis"
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_signing_in_answers_a_plain_503_page_in_the_users_language(
    live_server, redis_down
):
    chinese = requests.post(
        live_server.url + "/login/",
        data={"username": "owner@example.test", "password": "x"},
        headers={"Accept-Language": "zh-hans"},
        timeout=10,
    )
    assert chinese.status_code == 503
    assert chinese.headers["Content-Type"].startswith("text/html")
    assert "暂时无法使用" in chinese.text
    assert "Traceback" not in chinese.text
    assert int(chinese.headers["Retry-After"]) > 0
    english = requests.post(
        live_server.url + "/admin/login/",
        data={"username": "compliance@example.test", "password": "x"},
        headers={"Accept-Language": "en"},
        timeout=10,
    )
    assert english.status_code == 503
    assert "Temporarily unavailable" in english.text


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_request_refused_for_an_outage_is_logged_in_one_line_without_a_traceback(
    live_server, redis_down, caplog
):
    caplog.set_level(logging.INFO)
    response = requests.post(live_server.url + "/api/v1/wallet/login", json={}, timeout=10)
    assert response.status_code == 503
    request_id = response.headers["X-Request-ID"]
    lines = [
        r
        for r in caplog.records
        if getattr(r, "request_id", None) == request_id and r.levelno >= logging.WARNING
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].dependency == "redis"
    assert lines[0].exc_info is None
    assert "ConnectionError" in lines[0].error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_a_portal_page_answers_the_503_page(live_server):
    with database_refusing_connections():
        # A view that reads the database (an invitation link), anonymous.
        invitation = requests.get(
            live_server.url + "/invite/some-token/", headers={"Accept-Language": "en"}, timeout=10
        )
    assert invitation.status_code == 503
    assert "Temporarily unavailable" in invitation.text
    assert int(invitation.headers["Retry-After"]) > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_a_signed_in_page_answers_the_503_page(live_server, client, owner):
    # The session itself lives in the database: read before any view runs.
    client.force_login(owner)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with database_refusing_connections():
        home = requests.get(
            live_server.url + "/",
            cookies=cookies,
            headers={"Accept-Language": "zh-hans"},
            timeout=10,
            allow_redirects=False,
        )
    assert home.status_code == 503
    assert "暂时无法使用" in home.text
    assert requests.get(live_server.url + "/", cookies=cookies, timeout=10).status_code == 200


def test_it_names_the_part_behind_each_real_client_error(db):
    with pytest.raises(redis.exceptions.ConnectionError) as redis_error:
        redis.Redis(port=closed_port()).ping()
    assert failed_dependency(redis_error.value) == REDIS

    with pytest.raises(Exception) as broker_error:  # noqa: PT011 (kombu's own error)
        Connection(f"redis://127.0.0.1:{closed_port()}/0").ensure_connection(max_retries=1)
    assert failed_dependency(broker_error.value) == BROKER

    if connection.vendor == "postgresql":
        unreachable = connections.create_connection("default")
        unreachable.settings_dict = {**unreachable.settings_dict, "PORT": closed_port()}
        with pytest.raises(OperationalError) as database_error:
            unreachable.ensure_connection()
        assert failed_dependency(database_error.value) == DATABASE


def test_a_bug_is_not_mistaken_for_an_outage(db):
    assert failed_dependency(ValueError("bad")) is None
    assert failed_dependency(IntegrityError("duplicate key")) is None
    # SQLite says OperationalError, PostgreSQL ProgrammingError: a bug either way.
    with pytest.raises(DatabaseError) as missing_table, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    assert failed_dependency(missing_table.value) is None

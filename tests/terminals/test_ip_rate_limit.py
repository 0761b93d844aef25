"""The per-IP API limit on the terminal API, through real HTTP: every
request is counted once, before anything else is done for it (a signed
request, an unsigned endpoint, an unknown path), and a client over its limit
is refused before its bad signature costs a lookup or a security event."""

import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.cache import cache

from apps.audit.models import SecurityEvent
from apps.terminals.client import ActivationRefused, TerminalClient
from apps.terminals.models import Terminal
from apps.terminals.services import terminal_register
from apps.terminals.signing import request_sign
from tests.terminals.conftest import error_code, send, signed_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_limit(settings, pos):
    """Sets the per-IP API limit after the terminal's activation, in a fresh
    minute window; returns a reader of 127.0.0.1's count in it."""
    now = time.time()
    if now % 60 > 50:  # the whole test stays in one window
        time.sleep(61 - now % 60)
    cache.clear()
    window_start = int(time.time()) // 60 * 60

    def set_limit(limit):
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": (limit, 60)}
        return lambda: int(cache.get(f"rl:api:127.0.0.1:{window_start}") or 0)

    return set_limit


def test_a_signed_request_counts_once_and_the_one_over_the_limit_gets_a_signed_429(
    store, pos, api_limit
):
    count = api_limit(3)
    assert [pos.get("/api/v1/terminal/ping").status_code for _ in range(3)] == [200] * 3
    assert count() == 3
    over = signed_request(pos, "GET", "/api/v1/terminal/ping")
    refused = send(pos, over)  # its answer's signature verified
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert count() == 4
    # Refused before anything else was claimed: the same request, sent again
    # under a higher limit, is not a replay.
    api_limit(10)
    assert send(pos, over).status_code == 200


def test_a_bad_signature_over_the_limit_is_refused_before_it_is_recorded(pos, api_limit):
    count = api_limit(1)
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    tampered = signed_request(pos, "GET", "/api/v1/terminal/ping")
    tampered.url = tampered.url.replace("/ping", "/ping?x=1")
    refused = send(pos, tampered)
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
    assert not SecurityEvent.objects.filter(kind="terminal_signature_failure").exists()
    assert count() == 2


def test_unsigned_endpoints_and_unknown_paths_count_once_too(pos, api_limit):
    count = api_limit(3)
    assert pos.get("/api/v1/terminal/time").status_code == 200  # counted before its view
    assert pos.get("/api/v1/terminal/no-such-endpoint").status_code == 404  # after its 404
    unsigned = signed_request(pos, "GET", "/api/v1/terminal/ping")
    del unsigned.headers["Signature"]
    missing = send(pos, unsigned)
    assert (missing.status_code, error_code(missing)) == (401, "signature_missing")
    assert count() == 3
    for path in ("/api/v1/terminal/time", "/api/v1/terminal/no-such-endpoint"):
        refused = pos.get(path)
        assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
    assert count() == 5


def test_an_activation_over_the_limit_is_refused_before_it_uses_the_code(
    pos, api_limit, shop, owner, live_server, tmp_path
):
    """The unsigned activation endpoint is counted before its view runs: a
    refused activation leaves the code unused and the terminal pending."""
    terminal, code = terminal_register(
        merchant=shop.merchant, shop=shop, serial_number="SN-LIMIT", actor=owner
    )
    api_limit(1)
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    second = TerminalClient(live_server.url, tmp_path / "second.json")
    with pytest.raises(ActivationRefused) as refused:
        second.activate(code)
    assert refused.value.code == "rate_limited"
    terminal.refresh_from_db()
    assert terminal.status == Terminal.Status.PENDING


@pytest.mark.django_db
def test_a_client_over_its_limit_costs_no_lookup_of_a_terminal(
    client, settings, django_assert_num_queries
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": (0, 60)}
    prepared = requests.Request("GET", "http://testserver/api/v1/terminal/ping").prepare()
    request_sign(
        prepared,
        private_key=ed25519.Ed25519PrivateKey.generate(),
        key_id=str(uuid.uuid4()),
        body=None,
    )
    with django_assert_num_queries(0):
        refused = client.get(
            "/api/v1/terminal/ping",
            HTTP_SIGNATURE=prepared.headers["Signature"],
            HTTP_SIGNATURE_INPUT=prepared.headers["Signature-Input"],
        )
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")

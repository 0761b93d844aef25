"""The terminal cast: an active merchant's shop, a registered terminal and a
TerminalClient that activates it through real HTTP (pytest-django's
live_server)."""

import pytest

from apps.terminals.client import TerminalClient
from apps.terminals.services import terminal_register
from tests.accounts.factories import ShopFactory


@pytest.fixture(params=["redis", "no redis"])
def store(request, db, settings):
    """Runs a test on both stores of the replay cache and rate limits:
    Redis, and the cache and database of the embedded setup."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs Redis (set REDIS_URL)")
    else:
        settings.REDIS_URL = ""
    return request.param


@pytest.fixture
def shop(merchant):
    return ShopFactory(merchant=merchant, latitude="31.230400", longitude="121.473700")


@pytest.fixture
def registered(shop, owner):
    """(terminal, activation code) of a pending terminal."""
    return terminal_register(
        merchant=shop.merchant,
        shop=shop,
        serial_number="SN-0001",
        model="P2",
        bind_radius_m=300,
        actor=owner,
    )


@pytest.fixture
def pos(live_server, registered, tmp_path):
    """An activated terminal client, its state in a file like a real POS."""
    _terminal, code = registered
    client = TerminalClient(live_server.url, tmp_path / "pos.json")
    client.activate(code)
    return client


@pytest.fixture
def terminal(pos, registered):
    terminal, _code = registered
    terminal.refresh_from_db()
    return terminal


def signed_request(
    pos,
    method,
    path,
    body=None,
    *,
    private_key=None,
    key_id=None,
    created=None,
    nonce=None,
    headers=None,
):
    """A request signed like TerminalClient does, but returned unsent, so a
    test can tamper with it first."""
    import json

    import requests

    from apps.terminals.signing import request_sign

    data = json.dumps(body).encode() if body is not None else None
    prepared = requests.Request(
        method,
        pos.base_url + path,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})}
        if data
        else dict(headers or {}),
    ).prepare()
    request_sign(
        prepared,
        private_key=private_key or pos.private_key,
        key_id=key_id or pos.terminal_id,
        body=data,
        created=created,
        nonce=nonce,
    )
    return prepared


def send(pos, prepared):
    """Sends a (possibly tampered) request; the answer must carry a valid
    server signature whatever its status."""
    response = pos.session.send(prepared, timeout=10)
    pos.verify_response(response)
    return response


def error_code(response):
    return response.json()["error"]["code"]

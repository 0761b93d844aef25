"""The payer's balance and history in the wallet API."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_token_issue
from apps.core.money import Money
from apps.transactions.services import wallet_top_up
from tests.transactions.factories import funded_payer

pytestmark = pytest.mark.django_db


def _auth(payer) -> dict:
    _record, token = api_token_issue(user=payer.user)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_payer_sees_their_balance_and_history_newest_first(client):
    payer = funded_payer(10_00)
    wallet_top_up(payer=payer, amount=Money(5_00), reason="second", actor="test")
    other = funded_payer(99_00)
    balance = client.get("/api/v1/wallet/balance", **_auth(payer))
    assert balance.status_code == 200
    assert balance.json()["balance"] == 15_00
    history = client.get("/api/v1/wallet/history", **_auth(payer)).json()
    assert [item["amount"] for item in history["items"]] == [5_00, 10_00]
    assert history["next"] is None
    assert client.get("/api/v1/wallet/balance", **_auth(other)).json()["balance"] == 99_00


def test_the_wallet_endpoints_need_a_token(client):
    assert client.get("/api/v1/wallet/balance").status_code in (401, 403)

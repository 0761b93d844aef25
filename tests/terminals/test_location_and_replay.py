"""Location binding and the nonce replay cache."""

import datetime

import pytest
import redis

from apps.terminals.models import TerminalNonce
from apps.terminals.replay import nonce_claim, nonces_prune
from apps.terminals.selectors import terminal_distance_from_shop_m, terminal_is_within_bind_radius
from apps.terminals.services import terminal_register


@pytest.fixture
def pending(shop, owner):
    return terminal_register(
        merchant=shop.merchant, shop=shop, serial_number="SN-LOC", bind_radius_m=300, actor=owner
    )[0]


def test_distance_from_the_shop_is_the_great_circle_distance(pending):
    # Shop at People's Square, Shanghai (31.2304, 121.4737); 0.01° north is ~1,112 m.
    assert terminal_distance_from_shop_m(pending, 31.2304, 121.4737) == pytest.approx(0, abs=0.01)
    assert terminal_distance_from_shop_m(pending, 31.2404, 121.4737) == pytest.approx(
        1112, rel=0.01
    )
    # Beijing is ~1,067 km away.
    assert terminal_distance_from_shop_m(pending, 39.9087, 116.3975) == pytest.approx(
        1_067_000, rel=0.01
    )
    assert terminal_is_within_bind_radius(pending, 31.2320, 121.4737)
    assert not terminal_is_within_bind_radius(pending, 31.2404, 121.4737)


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_stores_the_reported_location(pos, terminal):
    response = pos.post(
        "/api/v1/terminal/heartbeat", {"latitude": "31.240400", "longitude": "121.473700"}
    )
    assert response.json()["within_bind_radius"] is False
    terminal.refresh_from_db()
    assert (str(terminal.last_latitude), str(terminal.last_longitude)) == (
        "31.240400",
        "121.473700",
    )
    assert terminal.last_location_at is not None


def test_a_nonce_is_accepted_once_per_scope(db):
    assert nonce_claim(scope="t1", nonce="n" * 20)
    assert not nonce_claim(scope="t1", nonce="n" * 20)
    assert nonce_claim(scope="t2", nonce="n" * 20)


def test_without_redis_nonces_live_in_the_database_and_are_pruned(db, settings):
    settings.REDIS_URL = ""
    assert nonce_claim(scope="t1", nonce="abc" * 6)
    assert not nonce_claim(scope="t1", nonce="abc" * 6)
    row = TerminalNonce.objects.get(scope="t1")
    assert row.expires_at > datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=590)

    TerminalNonce.objects.update(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    )
    # An expired row no longer counts as seen, and pruning removes it.
    assert nonce_claim(scope="t1", nonce="abc" * 6)
    TerminalNonce.objects.update(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    )
    assert nonces_prune() == 1
    assert not TerminalNonce.objects.exists()


@pytest.mark.redis
def test_with_redis_an_admission_claims_the_nonce_as_a_key_with_a_ttl(db, settings):
    from apps.core.redis_clients import redis_key
    from apps.terminals.replay import signed_request_admit

    assert signed_request_admit(scope="t1", nonce="r" * 20, rate_limit=10).nonce_fresh
    assert not signed_request_admit(scope="t1", nonce="r" * 20, rate_limit=10).nonce_fresh
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    assert 590 <= redis_client.ttl(redis_key("tnonce:t1:" + "r" * 20)) <= 600
    # The durable record is the view's to write (TerminalAPIView.initial).
    assert not TerminalNonce.objects.exists()


def test_an_admission_claims_nonce_rate_and_last_seen_at_once(store):
    from apps.terminals.replay import signed_request_admit

    first = signed_request_admit(scope="t9", nonce="p" * 20, rate_limit=2)
    again = signed_request_admit(scope="t9", nonce="p" * 20, rate_limit=2)
    third = signed_request_admit(scope="t9", nonce="q" * 20, rate_limit=2)
    assert (first.nonce_fresh, first.retry_after, first.seen_due) == (True, None, True)
    # Last seen is due on the terminal's first request of each window only.
    assert (again.nonce_fresh, again.seen_due) == (False, False)
    assert third.nonce_fresh
    assert third.retry_after is not None  # the third request this minute, limit 2
    assert 1 <= third.retry_after <= 60

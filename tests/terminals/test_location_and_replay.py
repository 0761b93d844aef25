"""Location binding and the nonce replay cache."""

import datetime

import pytest
import redis
from django.core.cache import cache

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
def test_with_redis_a_nonce_is_a_key_with_a_ttl(db, settings):
    assert nonce_claim(scope="t1", nonce="r" * 20)
    assert not nonce_claim(scope="t1", nonce="r" * 20)
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    assert 590 <= redis_client.ttl(cache.make_key("tnonce:t1:" + "r" * 20)) <= 600
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


def test_an_admission_counts_the_client_ips_hit_once_with_the_rest(store):
    from apps.core.ratelimit import PendingHit, rate_limit_hit
    from apps.terminals.replay import signed_request_admit

    hits = [PendingHit("api", "10.9.9.9", 2, 60) for _ in range(3)]
    first = signed_request_admit(scope="t8", nonce="a" * 20, rate_limit=10, ip_hit=hits[0])
    assert hits[0].counted
    assert (first.ip_retry_after, first.nonce_fresh) == (None, True)
    # A hit already counted (say, before a database lookup) is not counted again.
    signed_request_admit(scope="t8", nonce="b" * 20, rate_limit=10, ip_hit=hits[0])
    second = signed_request_admit(scope="t8", nonce="c" * 20, rate_limit=10, ip_hit=hits[1])
    assert second.ip_retry_after is None
    # The IP's third hit this minute is over its limit of 2: nothing else
    # is claimed, so its nonce stays usable and the terminal is not counted.
    over = signed_request_admit(scope="t8", nonce="d" * 20, rate_limit=10, ip_hit=hits[2])
    assert over.ip_retry_after is not None
    assert 1 <= over.ip_retry_after <= 60
    assert (over.nonce_fresh, over.seen_due) == (False, False)
    assert signed_request_admit(scope="t8", nonce="d" * 20, rate_limit=10).nonce_fresh
    # The same counter as the middleware's: the IP's next hit is its fourth.
    assert rate_limit_hit("api", "10.9.9.9", 3, 60) is not None
    assert rate_limit_hit("api", "10.9.9.8", 3, 60) is None

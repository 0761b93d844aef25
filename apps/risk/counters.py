"""Velocity counters: events per key in sliding windows.

With REDIS_URL (or RISK_REDIS_URL), each key is a Redis sorted set of
event timestamps; a decision reads every window it needs with one pipelined
round trip (ZCOUNT per key), and recording a payment adds its events with one more (ZADD,
trim, expire). Without REDIS_URL (the embedded setup) the counts live in
the database as per-key time buckets (RiskCounterBucket).

If REDIS_URL is set but Redis does not answer, `CounterUnavailable` is
raised: the engine then fails closed (velocity rules hold) rather than
approving blind. There is deliberately no silent fallback to the database
in that case: counts split across two stores would be wrong in both.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import Q, Sum
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.risk.models import RiskCounterBucket

logger = logging.getLogger(__name__)

# Database buckets are this many seconds wide: a window's count may include
# up to one bucket of slightly older events (it errs towards holding).
DB_BUCKET_S = 10
# Keys are kept this long after their last event (the longest window we allow).
MAX_WINDOW_S = 24 * 3600


class CounterUnavailable(Exception):
    """The configured counter store did not answer."""


@dataclass(frozen=True)
class CounterQuery:
    name: str  # the name the rules read ("payer", "terminal", ...)
    key: str
    window_s: int


# Adds one event to each key's window (member "<member>:<key>", score now),
# trims what is older than the longest window and lets an idle key expire.
_ADD_SCRIPT = """
-- ARGV: now, oldest score kept, expiry (s), member, then each key's short name
for i, key in ipairs(KEYS) do
    redis.call("ZADD", key, ARGV[1], ARGV[4] .. ":" .. ARGV[4 + i])
    redis.call("ZREMRANGEBYSCORE", key, "-inf", ARGV[2])
    redis.call("EXPIRE", key, ARGV[3])
end
return #KEYS
"""


class RedisCounterStore:
    def __init__(self, url: str, prefix: str) -> None:
        timeout = settings.RISK_REDIS_TIMEOUT_MS / 1000
        # No retries: a payment waits for at most one short timeout, then fails closed.
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self.prefix = prefix
        # One command per payment instead of three per key: less to encode
        # and parse on the payment's way out (redis-py loads it by SHA).
        self._add_script = self.client.register_script(_ADD_SCRIPT)

    def _key(self, key: str) -> str:
        return f"{self.prefix}risk:v:{key}"

    def counts(self, queries: list[CounterQuery], *, now: float) -> dict[str, int]:
        if not queries:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for q in queries:
            pipe.zcount(self._key(q.key), f"({now - q.window_s}", "+inf")
        try:
            results = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise CounterUnavailable(str(exc)) from exc
        return {q.name: int(r) for q, r in zip(queries, results, strict=True)}

    def add(self, keys: list[str], *, now: float, member: str) -> None:
        if not keys:
            return
        try:
            self._add_script(
                keys=[self._key(k) for k in keys],
                args=[now, now - MAX_WINDOW_S, MAX_WINDOW_S, member, *keys],
            )
        except (redis.RedisError, OSError) as exc:
            raise CounterUnavailable(str(exc)) from exc

    def prune(self, *, now: float) -> int:
        return 0  # keys trim themselves on write and expire when idle


class DatabaseCounterStore:
    """Counts in RiskCounterBucket rows; writes join the caller's transaction."""

    def counts(self, queries: list[CounterQuery], *, now: float) -> dict[str, int]:
        if not queries:
            return {}
        condition = Q()
        for q in queries:
            condition |= Q(key=q.key, bucket__gte=int((now - q.window_s) // DB_BUCKET_S))
        rows = (
            RiskCounterBucket.objects.filter(condition).values("key").annotate(total=Sum("count"))
        )
        by_key = {row["key"]: int(row["total"]) for row in rows}
        return {q.name: by_key.get(q.key, 0) for q in queries}

    def add(self, keys: list[str], *, now: float, member: str) -> None:
        bucket = int(now // DB_BUCKET_S)
        table = RiskCounterBucket._meta.db_table
        # One statement per key, race-free on both SQLite and PostgreSQL.
        sql = (
            f"INSERT INTO {table} (key, bucket, count) VALUES (%s, %s, 1) "  # noqa: S608 - table name is ours
            f"ON CONFLICT (key, bucket) DO UPDATE SET count = {table}.count + 1"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            for key in keys:
                cursor.execute(sql, [key, bucket])

    def prune(self, *, now: float) -> int:
        cutoff = int((now - MAX_WINDOW_S) // DB_BUCKET_S)
        deleted, _ = RiskCounterBucket.objects.filter(bucket__lt=cutoff).delete()
        return deleted


CounterStore = RedisCounterStore | DatabaseCounterStore

_store: CounterStore | None = None
_store_lock = threading.Lock()


def counters_redis_url() -> str:
    """Where the counters live: settings.RISK_REDIS_URL when set (a Redis
    of their own, or a test pointing only risk at a dead one), else the
    shared settings.REDIS_URL; empty means the database store."""
    return getattr(settings, "RISK_REDIS_URL", "") or settings.REDIS_URL or ""


def counter_store() -> CounterStore:
    """The process's counter store, chosen by counters_redis_url()."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = counters_redis_url()
                if url:
                    prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX", "") or ""
                    _store = RedisCounterStore(url, f"{prefix}:" if prefix else "")
                else:
                    _store = DatabaseCounterStore()
    return _store


def counter_store_reset(**kwargs) -> None:
    global _store
    if kwargs.get("setting") in (
        None,
        "REDIS_URL",
        "RISK_REDIS_URL",
        "RISK_REDIS_TIMEOUT_MS",
        "CACHES",
    ):
        _store = None


setting_changed.connect(counter_store_reset)


def now_ts() -> float:
    return time.time()

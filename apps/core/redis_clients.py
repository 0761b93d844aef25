"""The process's Redis client, for what Django's cache API cannot say in one
round trip: rate-limit counters (INCR with EXPIRE) and the signed-request
admission (one Lua script). redis-py's client is thread-safe and its
connection pool reconnects in a forked child (a gunicorn worker).

Keys are the cache's own (its KEY_PREFIX and version), so what the client
writes Django's cache reads (a counter, say), and a test run or a benchmark
never meets another's keys in a shared Redis.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.core.cache import caches
from redis.commands.core import Script

# A Redis that does not answer must fail a request quickly (a 503), not hold
# a worker: connection refused is immediate, a hung server costs this long.
SOCKET_TIMEOUT_SECONDS = 2.0

_clients: dict[str, redis.Redis] = {}


def redis_url() -> str:
    """The Redis of the default cache (REDIS_URL, unless a setting points
    the cache elsewhere): counters and cache entries live side by side."""
    location = settings.CACHES["default"].get("LOCATION", "")
    return (
        location
        if str(location).startswith(("redis://", "rediss://", "unix://"))
        else settings.REDIS_URL
    )


def redis_client() -> redis.Redis:
    """The client of redis_url() (one per process and URL)."""
    url = redis_url()
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
        )
    return client


def redis_key(key: str) -> str:
    """The key Django's cache stores `key` under."""
    return caches["default"].make_key(key)


_scripts: dict[tuple[str, str], Script] = {}


def redis_script(lua: str) -> Script:
    """`lua` registered with the client of redis_url(): calling it
    runs EVALSHA (loading the script again when Redis has forgotten it)."""
    key = (redis_url(), lua)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = redis_client().register_script(lua)
    return script

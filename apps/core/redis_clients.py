"""The process's shared Redis client, for hot paths that need raw commands
(pipelines) next to Django's cache: rate limits, the terminal replay cache
and the terminal auth cache."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache

_shared_redis_clients: dict[str, Any] = {}


def redis_client() -> Any:
    """One redis.Redis per process for the hot paths (rate limits, the
    terminal replay cache and auth cache). Django's RedisCache builds a new
    client object on every get_client() call, which costs more than the
    round trip it makes on a signed request; this one shares the cache's
    connection pool (thread-safe, and it reconnects after a fork)."""
    location = str(settings.CACHES["default"].get("LOCATION", ""))
    client = _shared_redis_clients.get(location)
    if client is None:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        _shared_redis_clients[location] = client
    return client

"""The process's shared Redis client, for hot paths that need raw commands
(pipelines) next to Django's cache: rate limits, the terminal replay cache
and the terminal auth cache."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.base import default_key_func
from django.core.signals import setting_changed
from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


class HotScript:
    """A Lua script on a hot path (the signed-request admission), run with
    EVALSHA on this thread's own connection to the cache's Redis. A pooled
    client call checks a connection out of the pool (a poll() health check
    per command) and goes through the client's command and retry machinery:
    about 30 µs of CPU more here, per signed request.

    The script loads itself into Redis when it is missing (NOSCRIPT); a
    dropped connection is reopened once, then the error is raised as
    redis-py raises it. The connection belongs to one thread of one process
    (it is opened afresh after a fork)."""

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.sha = hashlib.sha1(lua.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

    def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        command = ("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return _thread_command(command)
        except NoScriptError:
            _thread_command(("SCRIPT", "LOAD", self.lua))
            return _thread_command(command)


_thread = threading.local()


def _forget_after_fork() -> None:
    # A forked child (a gunicorn worker) must not share its parent's
    # sockets: it opens its own on first use.
    global _thread
    _thread = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def _thread_connection() -> Any:
    connection = getattr(_thread, "connection", None)
    if connection is None:
        pool = redis_client().connection_pool
        connection = _thread.connection = pool.connection_class(**pool.connection_kwargs)
    return connection


def _thread_command(command: tuple) -> Any:
    # Packed by hiredis itself: redis-py's packer only adds a pass over the
    # arguments for types (bytearray, memoryview) these never are.
    packed = [pack_command(command)]
    connection = _thread_connection()
    try:
        connection.send_packed_command(packed)
        return connection.read_response()
    except (RedisConnectionError, RedisTimeoutError):
        # Closed by the server while idle, or Redis restarted: once more on a
        # new connection (as redis-py's own retry would).
        connection.disconnect()
    connection.send_packed_command(packed)
    return connection.read_response()


def cache_key(key: str) -> str:
    """caches["default"].make_key(key): the key the cache's Redis holds
    `key` under (its prefix and version), without looking the cache up on
    every call. make_key, not make_and_validate_key: Redis keys are
    binary-safe, so the memcached-compatibility scan is of no use."""
    prefix = _key_prefix
    if prefix is None:
        prefix = _key_prefix_load()
    return prefix + key if prefix else caches["default"].make_key(key)


_key_prefix: str | None = None


def _key_prefix_load() -> str:
    # What make_key puts before every key: "" (no shortcut) unless the
    # cache builds keys with Django's default function.
    global _key_prefix
    default = caches["default"]
    _key_prefix = default.make_key("") if default.key_func is default_key_func else ""
    return _key_prefix


def _key_prefix_forget(*, setting: str, **_kwargs: Any) -> None:
    global _key_prefix
    if setting == "CACHES":
        _key_prefix = None


setting_changed.connect(_key_prefix_forget)

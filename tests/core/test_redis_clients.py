"""HotScript (apps/core/redis_clients.py): the signed-request admission's
Lua script on a thread's own Redis connection. It must survive what a
pooled client survives: Redis forgetting the script, and the server closing
the connection."""

from __future__ import annotations

import threading

import pytest

from apps.core.redis_clients import HotScript, _thread_command, redis_client

pytestmark = pytest.mark.redis

_COUNT = HotScript("return redis.call('INCR', KEYS[1])")


def test_a_hot_script_runs_and_loads_itself_again_after_redis_forgot_it():
    redis_client().delete("hot-script-test")
    assert _COUNT(keys=["hot-script-test"], args=[]) == 1
    redis_client().script_flush()
    assert _COUNT(keys=["hot-script-test"], args=[]) == 2
    assert redis_client().script_exists(_COUNT.sha) == [True]


def test_a_hot_script_reopens_a_connection_the_server_closed():
    redis_client().delete("hot-script-test")
    _COUNT(keys=["hot-script-test"], args=[])
    connection_id = _thread_command(("CLIENT", "ID"))
    assert redis_client().client_kill_filter(_id=connection_id) == 1
    assert _COUNT(keys=["hot-script-test"], args=[]) == 2  # counted once, not twice
    assert _thread_command(("CLIENT", "ID")) != connection_id


def test_a_script_error_is_raised_not_retried():
    from redis.exceptions import ResponseError

    redis_client().set("hot-script-test", "not a number")
    with pytest.raises(ResponseError):
        _COUNT(keys=["hot-script-test"], args=[])
    assert redis_client().get("hot-script-test") == b"not a number"


def test_each_thread_has_its_own_connection():
    ids: list[int] = []
    mine = _thread_command(("CLIENT", "ID"))
    thread = threading.Thread(target=lambda: ids.append(_thread_command(("CLIENT", "ID"))))
    thread.start()
    thread.join()
    assert ids
    assert ids[0] != mine


def test_a_forked_child_opens_its_own_connection():
    """A gunicorn worker forked from a master that already talked to Redis
    must not write into its parent's socket."""
    import os

    parent_id = _thread_command(("CLIENT", "ID"))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave at once
        try:
            os.write(write_end, str(_thread_command(("CLIENT", "ID"))).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child_id = int(os.read(read_end, 64) or b"0")
    os.close(read_end)
    assert child_id
    assert child_id != parent_id
    assert _thread_command(("CLIENT", "ID")) == parent_id  # the parent's is untouched


def test_a_cache_key_is_the_caches_own_and_follows_a_change_of_caches(settings):
    from django.core.cache import cache, caches

    from apps.core.redis_clients import cache_key

    assert cache_key("rl:api:1.2.3.4:60") == caches["default"].make_key("rl:api:1.2.3.4:60")
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": "other", "VERSION": 7}
    }
    assert cache_key("k") == "other:7:k" == caches["default"].make_key("k")
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "KEY_FUNCTION": "tests.core.test_redis_clients.suffixed_key",
        }
    }
    assert cache_key("abc") == "abc|other"
    cache.set("abc", 1)
    assert redis_client().get(cache_key("abc")) is not None  # where the cache put it


def suffixed_key(key: str, key_prefix: str, version: int) -> str:
    return f"{key}|{key_prefix}"

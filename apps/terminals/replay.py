"""The nonce replay cache: a nonce is accepted once per scope (a terminal id,
or "activation") within the replay window.

With REDIS_URL, one `SET key 1 NX EX ttl` shared by every web process; with
no Redis (the embedded setup), a unique row in the database, which is just
as atomic, pruned by `terminal_nonces_prune`.
"""

from __future__ import annotations

import datetime
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.ratelimit import (
    PendingHit,
    rate_limit_count,
    rate_limit_key,
    retry_after_seconds,
)
from apps.core.redis_clients import HotScript, cache_key
from apps.terminals.models import TerminalNonce


def replay_window_seconds() -> int:
    # `created` may lie up to the skew on either side of the server clock, so
    # a nonce must be remembered for twice the skew to outlive its signature.
    return 2 * settings.TERMINAL_CLOCK_SKEW_SECONDS


def nonce_claim(*, scope: str, nonce: str) -> bool:
    """True the first time (scope, nonce) is seen in the window, else False."""
    ttl = replay_window_seconds()
    if settings.REDIS_URL:
        return bool(cache.add(f"tnonce:{scope}:{nonce}", 1, timeout=ttl))
    now = timezone.now()
    try:
        with transaction.atomic():
            TerminalNonce.objects.create(
                scope=scope, nonce=nonce, expires_at=now + datetime.timedelta(seconds=ttl)
            )
        return True
    except IntegrityError:
        pass
    # An expired row not yet pruned does not count as a replay.
    with transaction.atomic():
        taken = TerminalNonce.objects.filter(scope=scope, nonce=nonce, expires_at__lt=now).update(
            expires_at=now + datetime.timedelta(seconds=ttl)
        )
    return taken == 1


def nonces_prune() -> int:
    deleted, _ = TerminalNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


class Admission(NamedTuple):
    """What one verified signed request claims at once: the client IP's hit
    of the API limit, its nonce, one hit of the terminal's rate limit and
    (on the first request of each such window) its last-seen stamp."""

    nonce_fresh: bool
    retry_after: int | None
    seen_due: bool
    # The auth cache entry's bytes at the moment of the claim (when asked).
    auth_stamp: bytes | None = None
    # Set when the client IP is over the API limit: nothing else was claimed.
    ip_retry_after: int | None = None


def signed_request_admit(
    *,
    scope: str,
    nonce: str,
    rate_limit: int,
    auth_cache_key: str = "",
    ip_hit: PendingHit | None = None,
) -> Admission:
    """With Redis, one round trip (one script): the client IP's hit of the
    API limit (`ip_hit`, the request's pending one, when given); unless that
    is over, SET NX EX of the nonce and INCR (+ EXPIRE) of the terminal's
    counter; and GET of the terminal's auth cache entry when
    `auth_cache_key` is given. The terminal is due a last-seen stamp on the
    first request of each rate-limit window (one a minute)."""
    now = int(time.time())
    counter, window_start = rate_limit_key("terminal", scope, TERMINAL_WINDOW, now)
    ip = ip_hit if ip_hit is not None and not ip_hit.counted else None
    if not settings.REDIS_URL:
        if ip is not None and (ip_retry := ip.count()) is not None:
            return Admission(False, None, False, ip_retry_after=ip_retry)
        nonce_fresh = nonce_claim(scope=scope, nonce=nonce)
        count = rate_limit_count(counter, TERMINAL_WINDOW)
        return Admission(
            nonce_fresh,
            retry_after_seconds(count, rate_limit, window_start, TERMINAL_WINDOW, now),
            count == 1,
        )
    keys = [cache_key(f"tnonce:{scope}:{nonce}"), cache_key(counter)]
    if ip is not None:
        ip.counted = True
        ip_counter, ip_start = rate_limit_key(ip.bucket, ip.ident, ip.window, now)
        keys.append(cache_key(ip_counter))
        ip_args = (ip.limit, ip.window + 1)
    else:
        keys.append(keys[1])  # not touched: the IP limit argument is 0
        ip_args = (0, 0)
    if auth_cache_key:
        keys.append(auth_cache_key)
    ip_count, nonce_set, count, auth = _ADMIT(
        keys=keys, args=[replay_window_seconds(), TERMINAL_WINDOW + 1, *ip_args]
    )
    if ip is not None:
        ip_retry = retry_after_seconds(ip_count, ip.limit, ip_start, ip.window, now)
        if ip_retry is not None:
            return Admission(False, None, False, ip_retry_after=ip_retry)
    return Admission(
        bool(nonce_set),
        retry_after_seconds(count, rate_limit, window_start, TERMINAL_WINDOW, now),
        count == 1,
        auth or None,
    )


# The terminal's own rate limit counts requests per minute.
TERMINAL_WINDOW = 60

# KEYS: nonce, terminal counter, IP counter[, auth cache entry]; ARGV: replay
# window (s), terminal counter lifetime (s), IP limit (0: not counted here),
# IP counter lifetime (s). One command instead of a pipeline: less for the
# web process to encode and parse on every signed request. An IP over its
# limit claims nothing else. (An absent auth entry comes back as false, not
# nil, so the reply array keeps its length.)
_ADMIT = HotScript(
    """
local ip = 0
if ARGV[3] ~= "0" then
  ip = redis.call("INCR", KEYS[3])
  if ip == 1 then redis.call("EXPIRE", KEYS[3], ARGV[4]) end
  if ip > tonumber(ARGV[3]) then return {ip, 0, 0, false} end
end
local nonce = redis.call("SET", KEYS[1], 1, "NX", "EX", ARGV[1])
local count = redis.call("INCR", KEYS[2])
if count == 1 then redis.call("EXPIRE", KEYS[2], ARGV[2]) end
local auth = false
if KEYS[4] then auth = redis.call("GET", KEYS[4]) end
return {ip, nonce and 1 or 0, count, auth}
"""
)

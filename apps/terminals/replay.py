"""The nonce replay cache: a nonce is accepted once per scope (a terminal id,
or "activation") within the replay window.

With REDIS_URL, one `SET key 1 NX EX ttl` shared by every web process; with
no Redis (the embedded setup), a unique row in the database, which is just
as atomic, pruned by `terminal_nonces_prune`.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.ratelimit import rate_limit_hit
from apps.core.redis_clients import HotScript
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


@dataclass(frozen=True)
class Admission:
    """What one verified signed request claims at once: its nonce, one hit of
    the terminal's rate limit, and (once a minute) its last-seen stamp."""

    nonce_fresh: bool
    retry_after: int | None
    seen_due: bool
    # The auth cache entry's bytes at the moment of the claim (when asked).
    auth_stamp: bytes | None = None


def signed_request_admit(
    *, scope: str, nonce: str, rate_limit: int, seen_every: int, auth_cache_key: str = ""
) -> Admission:
    """With Redis, one round trip (one script: SET NX EX, INCR + EXPIRE,
    SET NX EX, and GET of the terminal's auth cache entry when
    `auth_cache_key` is given); a signed request would otherwise pay six."""
    now = int(time.time())
    window_start = now - now % 60
    if not settings.REDIS_URL:
        retry_after = rate_limit_hit("terminal", scope, rate_limit, 60)
        seen_due = bool(cache.add(f"terminal-seen:{scope}", 1, timeout=seen_every))
        return Admission(nonce_claim(scope=scope, nonce=nonce), retry_after, seen_due)
    # make_key: Redis keys are binary-safe, so make_and_validate_key's
    # memcached-compatibility scan of every character is of no use here.
    make_key = caches["default"].make_key
    keys = [
        make_key(f"tnonce:{scope}:{nonce}"),
        make_key(f"rl:terminal:{scope}:{window_start}"),
        make_key(f"terminal-seen:{scope}"),
    ]
    if auth_cache_key:
        keys.append(auth_cache_key)
    nonce_set, count, seen_set, auth = _ADMIT(keys=keys, args=[replay_window_seconds(), seen_every])
    retry_after = max(1, window_start + 60 - now) if count > rate_limit else None
    return Admission(bool(nonce_set), retry_after, bool(seen_set), auth or None)


# KEYS: nonce, rate-limit counter, last-seen stamp[, auth cache entry];
# ARGV: replay window (s), last-seen period (s). One command instead of a
# pipeline of five: less for the web process to encode and parse on every
# signed request. (An absent auth entry comes back as false, not nil,
# so the reply array keeps its length.)
_ADMIT = HotScript(
    """
local nonce = redis.call("SET", KEYS[1], 1, "NX", "EX", ARGV[1])
local count = redis.call("INCR", KEYS[2])
if count == 1 then redis.call("EXPIRE", KEYS[2], 61) end
local seen = redis.call("SET", KEYS[3], 1, "NX", "EX", ARGV[2])
local auth = false
if KEYS[4] then auth = redis.call("GET", KEYS[4]) end
return {nonce and 1 or 0, count, seen and 1 or 0, auth}
"""
)

"""The nonce replay cache: a nonce is accepted once per scope (a terminal id,
or "activation") within the replay window, whatever happens to Redis.

- With REDIS_URL, every signed request claims its nonce in Redis first
  (`SET NX EX`, in the one round trip that also counts the terminal's rate
  limit): the fast refusal of a replay. Redis may lose what it holds (a
  restart, a flush, a failover to a replica that lags), so every nonce is
  ALSO kept durably in PostgreSQL for the window: a request that carries an
  Idempotency-Key stores its nonce in its idempotency record, written in
  the same transaction as what it does (apps.transactions: no extra round
  trip on a payment); any other signed request claims a TerminalNonce row
  (TerminalAPIView.initial).
- Without Redis (the embedded setup), the TerminalNonce row is the claim.

Expired rows are pruned by `nonces_prune` (a periodic task).
"""

from __future__ import annotations

import datetime
import time
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.ratelimit import rate_limit_count, rate_limit_key, retry_after_seconds
from apps.core.redis_clients import redis_key, redis_script
from apps.terminals.models import TerminalNonce

# The terminal's own rate limit counts requests per minute.
TERMINAL_WINDOW = 60


def replay_window_seconds() -> int:
    # `created` may lie up to the skew on either side of the server clock, so
    # a nonce must be remembered for twice the skew to outlive its signature.
    return 2 * settings.TERMINAL_CLOCK_SKEW_SECONDS


def nonce_claim(*, scope: str, nonce: str) -> bool:
    """True the first time (scope, nonce) is seen in the window, else False:
    one statement that inserts the row, or takes over an expired row not
    yet pruned (that one is no replay)."""
    now = timezone.now()
    table = connection.ops.quote_name(TerminalNonce._meta.db_table)
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (scope, nonce, expires_at) VALUES (%s, %s, %s) "  # noqa: S608 (our table)
            "ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at "
            f"WHERE {table}.expires_at < %s RETURNING 1",
            [
                scope,
                nonce,
                ops.adapt_datetimefield_value(
                    now + datetime.timedelta(seconds=replay_window_seconds())
                ),
                ops.adapt_datetimefield_value(now),
            ],
        )
        return cursor.fetchone() is not None


def nonces_prune() -> int:
    deleted, _ = TerminalNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


class Admission(NamedTuple):
    """What one verified signed request claims at once: its nonce, one hit
    of the terminal's rate limit, and (on the first request of each such
    window) whether its last-seen stamp is due."""

    nonce_fresh: bool
    retry_after: int | None
    seen_due: bool


# KEYS: nonce, terminal counter; ARGV: replay window (s), counter lifetime (s).
_ADMIT_LUA = """
local nonce = redis.call("SET", KEYS[1], 1, "NX", "EX", ARGV[1])
local count = redis.call("INCR", KEYS[2])
if count == 1 then redis.call("EXPIRE", KEYS[2], ARGV[2]) end
return {nonce and 1 or 0, count}
"""


def signed_request_admit(*, scope: str, nonce: str, rate_limit: int) -> Admission:
    """Claims the nonce and counts the terminal's rate limit: one Redis round
    trip (one script), or the database row and the in-process counter
    without Redis."""
    now = int(time.time())
    counter, window_start = rate_limit_key("terminal", scope, TERMINAL_WINDOW, now)
    if settings.REDIS_URL:
        nonce_set, count = redis_script(_ADMIT_LUA)(
            keys=[redis_key(f"tnonce:{scope}:{nonce}"), redis_key(counter)],
            args=[replay_window_seconds(), TERMINAL_WINDOW + 1],
        )
        nonce_fresh = bool(nonce_set)
    else:
        nonce_fresh = nonce_claim(scope=scope, nonce=nonce)
        count = rate_limit_count(counter, TERMINAL_WINDOW)
    return Admission(
        nonce_fresh,
        retry_after_seconds(int(count), rate_limit, window_start, TERMINAL_WINDOW, now),
        int(count) == 1,
    )

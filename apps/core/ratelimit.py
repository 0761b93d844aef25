"""A cache-backed fixed-window rate limit per client IP.

With REDIS_URL the counters are shared by every web process (INCR is atomic);
in the embedded setup they live in the one process's memory.

Every request under /api/, /login/ and /admin/login/ is counted once, before
anything else is done for it, so a client over its limit costs no more than
its refusal. (Terminals also have a limit of their own, counted when their
signature has verified: apps/terminals/replay.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api import error_body
from apps.core.redis_clients import redis_client, redis_key

LOGIN_PATHS = ("/login/", "/admin/login/", "/api/v1/wallet/login")
# The terminal API, whose every answer is signed (apps/terminals/middleware.py).
TERMINAL_API_PREFIX = "/api/v1/terminal/"


def client_ip(request: HttpRequest) -> str:
    # Behind a proxy the app is told how many hops to trust; never the
    # client's own X-Forwarded-For otherwise (it is trivially forged).
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0))
    if hops:
        forwarded = [
            p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def rate_limit_key(bucket: str, ident: str, window: int, now: int) -> tuple[str, int]:
    """The counter of (bucket, ident) for the window holding `now`, and the
    window's start (its counter expires with it)."""
    window_start = now - now % window
    return f"rl:{bucket}:{ident}:{window_start}", window_start


def retry_after_seconds(
    count: int, limit: int, window_start: int, window: int, now: int
) -> int | None:
    """None while `count` is within `limit`; else the seconds until the window ends."""
    return max(1, window_start + window - now) if count > limit else None


def rate_limit_count(key: str, window: int) -> int:
    """Adds one to the counter `key` of a window of `window` seconds (it
    lives a second longer); returns its new value."""
    if settings.REDIS_URL:
        # One round trip. The key names its window, so setting its lifetime
        # again on every hit only keeps it a little longer than needed.
        full_key = redis_key(key)
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, window + 1)
        count, _expiry_set = pipe.execute()
        return int(count)
    cache.add(key, 0, timeout=window + 1)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        return 1


def rate_limit_hit(bucket: str, ident: str, limit: int, window: int) -> int | None:
    """Counts one hit; returns the seconds to wait when over the limit."""
    now = int(time.time())
    key, window_start = rate_limit_key(bucket, ident, window, now)
    return retry_after_seconds(rate_limit_count(key, window), limit, window_start, window, now)


def bucket_for(request: HttpRequest) -> str | None:
    path = request.path
    if request.method == "POST" and path.startswith(LOGIN_PATHS):
        return "login"
    if path.startswith("/api/"):
        return "api"
    return None


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bucket = bucket_for(request) if settings.RATE_LIMIT_ENABLED else None
        if bucket:
            limit, window = settings.RATE_LIMITS[bucket]
            retry_after = rate_limit_hit(bucket, client_ip(request), limit, window)
            if retry_after is not None:
                return too_many_requests(request, retry_after)
        return self.get_response(request)


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            error_body(
                "rate_limited", f"Too many requests; retry after {retry_after} s.", request=request
            ),
            status=429,
        )
    else:
        response = HttpResponse(
            "Too many attempts. Please wait a moment and try again. 请求过于频繁，请稍后再试。",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(retry_after)
    return response

"""A cache-backed fixed-window rate limit per client IP.

With REDIS_URL the counters are shared by every web process (INCR is atomic);
in the embedded setup they live in the one process's memory.

Every request under /api/, /login/ and /admin/login/ is counted once. The
terminal API's requests are counted once their view is known: a signed
terminal request in the one Redis round trip that also claims its nonce
(apps/terminals/replay.py), any other in `process_view`, before its view
runs, and a path that resolves to no view after its 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api import error_body
from apps.core.redis_clients import HotScript, cache_key

LOGIN_PATHS = ("/login/", "/admin/login/", "/api/v1/wallet/login")
# The terminal API, whose count waits for the view (see the module
# docstring) and whose every answer is signed (apps/terminals/middleware.py).
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
        # One round trip, on the thread's own connection (HotScript).
        return int(_HIT(keys=[cache_key(key)], args=[window + 1]))
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


# KEYS: the window's counter; ARGV: its lifetime (s). The counter expires
# once, with its window, however often it is hit.
_HIT = HotScript(
    """
local count = redis.call("INCR", KEYS[1])
if count == 1 then redis.call("EXPIRE", KEYS[1], ARGV[1]) end
return count
"""
)


def bucket_for(request: HttpRequest) -> str | None:
    path = request.path
    if request.method == "POST" and path.startswith(LOGIN_PATHS):
        return "login"
    if path.startswith("/api/"):
        return "api"
    return None


@dataclass
class PendingHit:
    """A request's per-IP hit, not yet counted: `request.rate_limit_pending`
    on a terminal API request until its view is known. Whoever counts it
    sets `counted`; it is counted once."""

    bucket: str
    ident: str
    limit: int
    window: int
    counted: bool = False

    def count(self) -> int | None:
        """Counts the hit now (once); the seconds to wait when over the limit."""
        if self.counted:
            return None
        self.counted = True
        return rate_limit_hit(self.bucket, self.ident, self.limit, self.window)


def counts_in_admission(view_func: Any) -> bool:
    """Whether the view's authentication counts the per-IP hit itself, in
    its own round trip (an authentication class with `counts_ip_hit`)."""
    known = _COUNTS_IN_ADMISSION.get(view_func)
    if known is None:
        known = _COUNTS_IN_ADMISSION[view_func] = _counts_in_admission(view_func)
    return known


# View functions are made once, when the URLconf loads: a handful of keys.
_COUNTS_IN_ADMISSION: dict[Any, bool] = {}


def _counts_in_admission(view_func: Any) -> bool:
    initkwargs = getattr(view_func, "view_initkwargs", None) or {}
    classes = initkwargs.get("authentication_classes")
    if classes is None:
        classes = getattr(getattr(view_func, "view_class", None), "authentication_classes", ())
    return any(getattr(c, "counts_ip_hit", False) for c in classes)


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bucket = bucket_for(request) if settings.RATE_LIMIT_ENABLED else None
        if not bucket:
            return self.get_response(request)
        limit, window = settings.RATE_LIMITS[bucket]
        ident = client_ip(request)
        if bucket != "api" or not request.path.startswith(TERMINAL_API_PREFIX):
            retry_after = rate_limit_hit(bucket, ident, limit, window)
            if retry_after is not None:
                return too_many_requests(request, retry_after)
            return self.get_response(request)
        pending = PendingHit(bucket, ident, limit, window)
        request.rate_limit_pending = pending  # type: ignore[attr-defined]
        response = self.get_response(request)
        # Reached no view (no such path, a redirect): nothing was done that
        # a 429 in its place would lose.
        if not pending.counted and (retry_after := pending.count()) is not None:
            return too_many_requests(request, retry_after)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, *_args: Any
    ) -> HttpResponse | None:
        pending: PendingHit | None = getattr(request, "rate_limit_pending", None)
        if pending is None or pending.counted or counts_in_admission(view_func):
            return None
        retry_after = pending.count()
        return too_many_requests(request, retry_after) if retry_after is not None else None


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

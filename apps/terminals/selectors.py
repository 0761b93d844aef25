"""Reads of the terminals app."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache, caches
from django.db.models import Q, QuerySet
from django.db.models.base import ModelState
from django.utils import timezone

from apps.accounts.models import Merchant, OperatorPin, Role
from apps.audit.models import SecurityEvent
from apps.terminals.crypto import server_public_keys
from apps.terminals.models import Terminal, TerminalKey

EARTH_RADIUS_M = 6_371_008.8

# Roles whose transaction password signs them in at a terminal.
OPERATOR_ROLES = (Role.OWNER, Role.MANAGER, Role.CASHIER)


def terminal_list_for_merchant(*, merchant: Merchant) -> QuerySet[Terminal]:
    return (
        Terminal.objects.for_merchant(merchant).select_related("shop").order_by("-created_at", "pk")
    )


# With Redis, the terminal and its keys are cached for a few seconds, so a
# signed request costs no SQL query. Every change of a terminal's status or
# keys replaces the entry with a tombstone when it commits (services.py);
# while the tombstone lives, readers go to the database and may not cache,
# so a reader that loaded the old state just before the commit cannot put it
# back. A suspended terminal is therefore refused at once.
AUTH_CACHE_SECONDS = 30
_TOMBSTONE_SECONDS = 5
_TOMBSTONE = "gone"


def _auth_cache_key(key_id: str) -> str:
    return f"terminal-auth:{key_id}"


def terminal_auth_cache_forget(public_id: object) -> None:
    if settings.REDIS_URL:
        cache.set(_auth_cache_key(str(public_id)), _TOMBSTONE, timeout=_TOMBSTONE_SECONDS)


def _terminal_with_keys_load(
    public_id: uuid.UUID,
) -> tuple[Terminal, list[tuple[str, object]]] | None:
    now = timezone.now()
    keys = list(
        TerminalKey.objects.select_related("terminal__merchant", "terminal__shop")
        .filter(terminal__public_id=public_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at", "-pk")
    )
    if keys:
        return keys[0].terminal, [(k.public_key, k.expires_at) for k in keys]
    terminal = Terminal.objects.select_related("merchant").filter(public_id=public_id).first()
    return (terminal, []) if terminal is not None else None


def _usable(keys: list[tuple[str, object]]) -> list[str]:
    now = timezone.now()
    return [
        public_key
        for public_key, expires_at in keys
        if expires_at is None or expires_at > now  # type: ignore[operator]
    ]


def _usable_until(keys: list[tuple[str, object]]) -> tuple[tuple[str, ...], float]:
    """The usable keys and the moment (time.time()) the first of them
    expires, when they stop being the usable keys (inf: none expires)."""
    usable = tuple(_usable(keys))
    expiries = [
        expires_at.timestamp()  # type: ignore[attr-defined]
        for public_key, expires_at in keys
        if expires_at is not None and public_key in usable
    ]
    return usable, min(expiries, default=math.inf)


def terminal_with_valid_keys(*, key_id: str) -> tuple[Terminal, Sequence[str]] | None:
    """The terminal a signature's keyid names and its usable public keys,
    newest first. None when the keyid names no terminal."""
    found = terminal_auth_find(key_id=key_id)
    return None if found is None else (found.terminal, found.public_keys)


class TerminalAuth(NamedTuple):
    """What terminal_auth_find found (a named tuple: built on every signed
    request for a fraction of a dataclass's cost). `stamp` is the auth
    cache entry's exact bytes in Redis it was read from (None: not known to
    be cached); `local` says it came from this process's memory, so the
    caller MUST compare the stamp with Redis's current entry
    (replay.signed_request_admit reads it in the nonce claim's round trip)
    before trusting it."""

    terminal: Terminal
    public_keys: Sequence[str]
    cache_key: str
    stamp: bytes | None
    local: bool


# Per process, with Redis only, by terminal id (a keyid as terminals write
# it): the auth cache entry's full key, its bytes as last read from Redis,
# the terminal they unpickle to, its usable keys and the moment the first of
# those expires (after which the copy is not used). Never trusted alone:
# every request checks the bytes against Redis in the round trip that claims
# its nonce, so a status or key change (which replaces the Redis entry with
# a tombstone) is seen on the terminal's next request, as without this copy;
# it saves the GET and the unpickling.
_LOCAL_AUTH: dict[str, tuple[str, bytes, Terminal, tuple[str, ...], float]] = {}
_LOCAL_AUTH_MAX = 10_000


def _local_auth_remember(key_id: str, cache_key: str, stamp: bytes, loaded: tuple) -> TerminalAuth:
    """Keeps `loaded` as the process's copy; the request's own TerminalAuth
    (a copy of the terminal, the keys worked out once for both)."""
    if len(_LOCAL_AUTH) >= _LOCAL_AUTH_MAX:
        _LOCAL_AUTH.clear()
    terminal, keys = loaded
    usable, until = _usable_until(keys)
    _LOCAL_AUTH[key_id] = (cache_key, stamp, terminal, usable, until)
    return TerminalAuth(_model_copy(terminal), usable, cache_key, stamp, False)


def terminal_auth_local_forget(key_id: str) -> None:
    _LOCAL_AUTH.pop(key_id, None)


def terminal_auth_local(*, key_id: str) -> TerminalAuth | None:
    """This process's copy of the terminal a keyid names (`local`: the caller
    MUST confirm its stamp with Redis), or None. Reads nothing outside the
    process. None without Redis: nothing to confirm a copy against."""
    held = _LOCAL_AUTH.get(key_id) if settings.REDIS_URL else None
    if held is None:
        return None
    cache_key, stamp, terminal, usable, until = held
    if time.time() >= until:
        return None  # a key expired: the next lookup works them out again
    return TerminalAuth(_model_copy(terminal), usable, cache_key, stamp, True)


def _model_copy(instance: Any) -> Any:
    """A copy of a model instance and of the related instances it holds
    (merchant, shop), as unpickling would give, for a few microseconds. Each
    request gets its own, so nothing a request sets on its terminal reaches
    another request."""
    copied = instance.__class__.__new__(instance.__class__)
    copied.__dict__ = instance.__dict__.copy()
    state = copied._state = ModelState.__new__(ModelState)
    state.__dict__ = instance._state.__dict__.copy()
    related = state.fields_cache
    if related:
        state.fields_cache = {
            name: None if value is None else _model_copy(value) for name, value in related.items()
        }
    else:
        state.fields_cache = {}
    return copied


def terminal_auth_find(*, key_id: str) -> TerminalAuth | None:
    """The terminal a keyid names with its usable keys: from the Redis auth
    cache, else the database (then cached unless a tombstone is there). The
    process's own copy is terminal_auth_local's."""
    from apps.core.redis_clients import cache_key as redis_cache_key
    from apps.core.redis_clients import redis_client

    try:
        public_id = uuid.UUID(key_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if not settings.REDIS_URL:
        loaded = _terminal_with_keys_load(public_id)
        if loaded is None:
            return None
        return TerminalAuth(loaded[0], _usable(loaded[1]), "", None, False)
    # One lookup of the cache (the `cache` proxy repeats it per attribute).
    default_cache = caches["default"]
    canonical_id = str(public_id)
    cache_key = redis_cache_key(_auth_cache_key(canonical_id))
    serializer = default_cache._cache._serializer  # type: ignore[attr-defined]
    client = redis_client()
    raw = client.get(cache_key)
    if raw is not None:
        found = serializer.loads(raw)
        if found != _TOMBSTONE:
            # The process keeps this one; the request gets a copy.
            return _local_auth_remember(canonical_id, cache_key, raw, found)
    loaded = _terminal_with_keys_load(public_id)
    if loaded is None:
        return None
    # Never over a tombstone (SET NX, as cache.add): see AUTH_CACHE_SECONDS.
    # The bytes written are the stamp.
    stamp = serializer.dumps(loaded)
    if raw is None and client.set(cache_key, stamp, nx=True, ex=AUTH_CACHE_SECONDS):
        return _local_auth_remember(canonical_id, cache_key, stamp, loaded)
    return TerminalAuth(loaded[0], _usable(loaded[1]), cache_key, None, False)


def terminal_distance_from_shop_m(
    terminal: Terminal, latitude: float | Decimal, longitude: float | Decimal
) -> float:
    """Great-circle (haversine) distance in metres between the reported
    coordinates and the terminal's bound shop. Compare with
    `terminal.bind_radius_m` to tell a moved terminal."""
    shop = terminal.shop
    lat1, lng1 = math.radians(float(shop.latitude)), math.radians(float(shop.longitude))
    lat2, lng2 = math.radians(float(latitude)), math.radians(float(longitude))
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def terminal_is_within_bind_radius(
    terminal: Terminal, latitude: float | Decimal, longitude: float | Decimal
) -> bool:
    return terminal_distance_from_shop_m(terminal, latitude, longitude) <= terminal.bind_radius_m


def operator_records_for_merchant(*, merchant: Merchant) -> QuerySet[OperatorPin]:
    """The transaction-password verifier records of the merchant's active
    staff who may operate a terminal."""
    return (
        OperatorPin.objects.for_merchant(merchant)
        .filter(membership__is_active=True, membership__role__in=OPERATOR_ROLES)
        .select_related("membership__user")
        .order_by("membership__created_at", "pk")
    )


def operator_record_view(record: OperatorPin) -> dict:
    membership = record.membership
    return {
        "operator_id": str(membership.public_id),
        "name": membership.user.display_name or membership.user.email.split("@")[0],
        "role": membership.role,
        "algorithm": "pbkdf2-sha256",
        "salt": record.salt,
        "iterations": record.iterations,
        "verifier": record.verifier,
        "set_at": record.set_at.isoformat(),
        "locked": bool(record.locked_until and record.locked_until > timezone.now()),
    }


def terminal_config(*, terminal: Terminal) -> dict:
    """What GET /api/v1/terminal/config returns: enough for the terminal to
    check operator PINs offline and to know its binding, hours and limits."""
    shop = terminal.shop
    return {
        "terminal": {
            "id": str(terminal.public_id),
            "serial_number": terminal.serial_number,
            "status": terminal.status,
        },
        "merchant": {"id": str(terminal.merchant.public_id), "name": terminal.merchant.name},
        "shop": {
            "id": str(shop.public_id),
            "name": shop.name,
            "address": shop.address,
            "latitude": str(shop.latitude),
            "longitude": str(shop.longitude),
            "bind_radius_m": terminal.bind_radius_m,
        },
        "business_hours": {
            "timezone": settings.TIME_ZONE,
            "opens_at": shop.opens_at.strftime("%H:%M")
            if hasattr(shop.opens_at, "strftime")
            else str(shop.opens_at),
            "closes_at": shop.closes_at.strftime("%H:%M")
            if hasattr(shop.closes_at, "strftime")
            else str(shop.closes_at),
        },
        "operators": [
            operator_record_view(r)
            for r in operator_records_for_merchant(merchant=terminal.merchant)
        ],
        "limits": {
            "clock_skew_seconds": settings.TERMINAL_CLOCK_SKEW_SECONDS,
            "requests_per_minute": settings.TERMINAL_RATE_LIMIT,
            "operator_pin_length": 6,
            "operator_pin_max_attempts": getattr(settings, "OPERATOR_PIN_MAX_ATTEMPTS", 5),
        },
        "server_keys": server_public_keys(),
        "server_time": timezone.now().isoformat(),
    }


def terminal_security_events(*, terminal: Terminal, limit: int = 20) -> list[SecurityEvent]:
    return list(
        SecurityEvent.objects.filter(
            merchant_id=str(terminal.merchant.public_id), data__terminal_id=str(terminal.public_id)
        ).order_by("-created_at")[:limit]
    )

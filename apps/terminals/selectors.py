"""Reads of the terminals app."""

from __future__ import annotations

import math
import pickle
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Merchant, OperatorPin, Role
from apps.audit.models import SecurityEvent
from apps.core.redis_clients import redis_client, redis_key
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
# The entry is the pickled (terminal with its merchant and shop, its keys),
# in Redis through the project's own client: Django's cache builds a client
# object on every call, which cost a signed request more than the GET.
AUTH_CACHE_SECONDS = 30
_TOMBSTONE_SECONDS = 5
_TOMBSTONE = b"gone"


def _auth_cache_key(key_id: str) -> str:
    return f"terminal-auth:{key_id}"


def terminal_auth_cache_forget(public_id: object) -> None:
    if settings.REDIS_URL:
        redis_client().set(
            redis_key(_auth_cache_key(str(public_id))), _TOMBSTONE, ex=_TOMBSTONE_SECONDS
        )


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


def _usable(keys: list[tuple[str, object]]) -> tuple[str, ...]:
    now = timezone.now()
    return tuple(
        public_key
        for public_key, expires_at in keys
        if expires_at is None or expires_at > now  # type: ignore[operator]
    )


def terminal_with_valid_keys(*, key_id: str) -> tuple[Terminal, Sequence[str]] | None:
    """The terminal a signature's keyid names and its usable public keys,
    newest first. None when the keyid names no terminal."""
    found = terminal_auth_find(key_id=key_id)
    return None if found is None else (found.terminal, found.public_keys)


class TerminalAuth(NamedTuple):
    """What terminal_auth_find found: the terminal (with its merchant and
    shop) and its usable public keys, newest first."""

    terminal: Terminal
    public_keys: tuple[str, ...]


def terminal_auth_find(*, key_id: str) -> TerminalAuth | None:
    """The terminal a keyid names with its usable keys: from the auth cache
    (with Redis), else the database (then cached, unless a tombstone is
    there). Each call unpickles its own copy of the terminal."""
    try:
        public_id = uuid.UUID(key_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if not settings.REDIS_URL:
        loaded = _terminal_with_keys_load(public_id)
        return None if loaded is None else TerminalAuth(loaded[0], _usable(loaded[1]))
    key = redis_key(_auth_cache_key(str(public_id)))
    client = redis_client()
    cached = client.get(key)
    if cached is not None and cached != _TOMBSTONE:
        terminal, keys = pickle.loads(cached)  # noqa: S301 (only this server writes it)
        return TerminalAuth(terminal, _usable(keys))
    loaded = _terminal_with_keys_load(public_id)
    if loaded is None:
        return None
    if cached is None:
        # Never over a tombstone (SET NX): see AUTH_CACHE_SECONDS.
        client.set(key, pickle.dumps(loaded), nx=True, ex=AUTH_CACHE_SECONDS)
    return TerminalAuth(loaded[0], _usable(loaded[1]))


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

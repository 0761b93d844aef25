"""Writes of the terminals app: each function one business action in its own
transaction, writing its audit record."""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Merchant, OperatorPin, Shop
from apps.accounts.services import operator_pin_is_locked, operator_pin_verify
from apps.audit.models import SecurityEvent
from apps.audit.services import audit_record, security_event_record
from apps.core.errors import ServiceError
from apps.core.ratelimit import rate_limit_hit
from apps.terminals.crypto import SecretUndecryptable, b64decode_key, secret_open
from apps.terminals.models import Terminal, TerminalKey
from apps.terminals.selectors import OPERATOR_ROLES, terminal_auth_cache_forget

logger = logging.getLogger(__name__)


class TerminalError(ServiceError):
    """A refused terminal action (docs/api-errors.md)."""


def _terminal_actor(terminal: Terminal) -> str:
    return f"terminal:{terminal.public_id}"


def _code_hash(code: str) -> str:
    digits = "".join(ch for ch in code if ch.isdigit())
    return hashlib.sha256(digits.encode()).hexdigest()


def _activation_code_new() -> str:
    # 12 digits: keyed in on a POS keypad; single use, 15 minutes, rate limited.
    digits = "".join(secrets.choice("0123456789") for _ in range(12))
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"


def _activation_code_set(terminal: Terminal) -> str:
    code = _activation_code_new()
    terminal.activation_code_hash = _code_hash(code)
    terminal.activation_code_expires_at = timezone.now() + datetime.timedelta(
        seconds=settings.TERMINAL_ACTIVATION_CODE_TTL_SECONDS
    )
    terminal.activation_code_used_at = None
    return code


def _merchant_must_be_active(merchant: Merchant) -> None:
    if merchant.status != Merchant.Status.ACTIVE:
        raise TerminalError(
            "merchant_not_active",
            "Only a merchant whose KYB is approved can register or activate terminals.",
            status_code=403,
        )


def terminal_register(
    *,
    merchant: Merchant,
    shop: Shop,
    serial_number: str,
    model: str = "",
    bind_radius_m: int = 200,
    actor: Any,
    request: Any = None,
) -> tuple[Terminal, str]:
    """Registers a pending terminal at one of the merchant's shops. Returns
    it with its one-time activation code (only a hash is kept)."""
    _merchant_must_be_active(merchant)
    if shop.merchant_id != merchant.pk:
        raise TerminalError("shop_unknown", "No such shop.", field="shop", status_code=404)
    serial_number = serial_number.strip()
    if not serial_number:
        raise TerminalError(
            "invalid_request", "A serial number is required.", field="serial_number"
        )
    if not 10 <= bind_radius_m <= 50_000:
        raise TerminalError(
            "invalid_request", "The bind radius must be 10 to 50,000 m.", field="bind_radius_m"
        )
    try:
        with transaction.atomic():
            terminal = Terminal(
                merchant=merchant,
                shop=shop,
                serial_number=serial_number,
                model=model.strip(),
                bind_radius_m=bind_radius_m,
            )
            code = _activation_code_set(terminal)
            terminal.save()
            audit_record(
                action="terminal.registered",
                actor=actor,
                merchant=merchant,
                target=terminal,
                data={
                    "serial_number": serial_number,
                    "shop": str(shop.public_id),
                    "bind_radius_m": bind_radius_m,
                },
                request=request,
            )
    except IntegrityError as exc:
        raise TerminalError(
            "terminal_serial_taken",
            "A terminal with this serial number is already registered.",
            field="serial_number",
            status_code=409,
        ) from exc
    return terminal, code


def terminal_activation_code_issue(*, terminal: Terminal, actor: Any, request: Any = None) -> str:
    """A fresh activation code: for a pending terminal whose code expired, or
    to re-key an active one ("rotate" in the portal). The current key keeps
    working until the terminal activates with the new code and a new key."""
    _merchant_must_be_active(terminal.merchant)
    with transaction.atomic():
        terminal = Terminal.objects.select_for_update().get(pk=terminal.pk)
        if terminal.status not in (Terminal.Status.PENDING, Terminal.Status.ACTIVE):
            raise TerminalError(
                "terminal_inactive", "A suspended or retired terminal gets no activation code."
            )
        code = _activation_code_set(terminal)
        terminal.save(
            update_fields=[
                "activation_code_hash",
                "activation_code_expires_at",
                "activation_code_used_at",
            ]
        )
        audit_record(
            action="terminal.activation_code_issued",
            actor=actor,
            merchant=terminal.merchant,
            target=terminal,
            data={"status": terminal.status},
            request=request,
        )
    return code


def _key_add(terminal: Terminal, public_key_b64: str) -> TerminalKey:
    """Adds the new current key; the previous keys expire after the grace
    period (rotation without downtime)."""
    now = timezone.now()
    grace_end = now + datetime.timedelta(seconds=settings.TERMINAL_KEY_GRACE_SECONDS)
    TerminalKey.objects.filter(terminal=terminal, expires_at__isnull=True).update(
        expires_at=grace_end
    )
    TerminalKey.objects.filter(terminal=terminal, expires_at__gt=grace_end).update(
        expires_at=grace_end
    )
    key = TerminalKey.objects.create(terminal=terminal, public_key=public_key_b64, created_at=now)
    _auth_cache_forget_on_commit(terminal)
    return key


def _auth_cache_forget_on_commit(terminal: Terminal) -> None:
    public_id = terminal.public_id
    transaction.on_commit(lambda: terminal_auth_cache_forget(public_id))


def _public_key_check(public_key_b64: str) -> str:
    try:
        b64decode_key(public_key_b64)
    except ValueError as exc:
        raise TerminalError(
            "public_key_invalid",
            "public_key must be base64 of a raw 32-byte Ed25519 key.",
            field="public_key",
        ) from exc
    if TerminalKey.objects.filter(public_key=public_key_b64.strip()).exists():
        raise TerminalError(
            "public_key_reused",
            "This public key is already registered; make a new key pair.",
            field="public_key",
            status_code=409,
        )
    return public_key_b64.strip()


def terminal_activate(*, code: str, public_key_b64: str, request: Any = None) -> Terminal:
    """A terminal proves its activation code and registers its public key.
    A code works once; the terminal becomes active."""
    public_key_b64 = _public_key_check(public_key_b64)
    with transaction.atomic():
        terminal = (
            Terminal.objects.select_for_update()
            .select_related("merchant", "shop")
            .filter(activation_code_hash=_code_hash(code))
            .first()
        )
        if terminal is None or not "".join(ch for ch in code if ch.isdigit()):
            raise TerminalError(
                "activation_code_invalid",
                "This activation code is not valid.",
                field="activation_code",
                status_code=403,
            )
        if terminal.activation_code_used_at is not None:
            raise TerminalError(
                "activation_code_used",
                "This activation code has already been used.",
                field="activation_code",
                status_code=403,
            )
        if (
            terminal.activation_code_expires_at is None
            or terminal.activation_code_expires_at <= timezone.now()
        ):
            raise TerminalError(
                "activation_code_expired",
                "This activation code has expired; issue a new one.",
                field="activation_code",
                status_code=403,
            )
        _merchant_must_be_active(terminal.merchant)
        if terminal.status not in (Terminal.Status.PENDING, Terminal.Status.ACTIVE):
            raise TerminalError(
                "terminal_inactive", "This terminal is suspended or retired.", status_code=403
            )
        rekey = terminal.status == Terminal.Status.ACTIVE
        _key_add(terminal, public_key_b64)
        now = timezone.now()
        terminal.status = Terminal.Status.ACTIVE
        terminal.activation_code_used_at = now
        terminal.activated_at = terminal.activated_at or now
        terminal.last_seen_at = now
        terminal.save(
            update_fields=["status", "activation_code_used_at", "activated_at", "last_seen_at"]
        )
        audit_record(
            action="terminal.rekeyed" if rekey else "terminal.activated",
            actor=_terminal_actor(terminal),
            merchant=terminal.merchant,
            target=terminal,
            data={"public_key": public_key_b64},
            request=request,
        )
    return terminal


def terminal_key_rotate(
    *, terminal: Terminal, public_key_b64: str, request: Any = None
) -> TerminalKey:
    """The terminal replaces its own key (signed with its current one)."""
    public_key_b64 = _public_key_check(public_key_b64)
    with transaction.atomic():
        locked = Terminal.objects.select_for_update().get(pk=terminal.pk)
        if not locked.is_active:
            raise TerminalError(
                "terminal_inactive", "This terminal is not active.", status_code=403
            )
        key = _key_add(locked, public_key_b64)
        audit_record(
            action="terminal.key_rotated",
            actor=_terminal_actor(locked),
            merchant=terminal.merchant,
            target=locked,
            data={
                "public_key": public_key_b64,
                "grace_seconds": settings.TERMINAL_KEY_GRACE_SECONDS,
            },
            request=request,
        )
    return key


def _status_change(
    terminal: Terminal,
    *,
    allowed_from: tuple[str, ...],
    to: str,
    action: str,
    actor: Any,
    reason: str,
    request: Any,
    revoke_keys: bool = False,
) -> Terminal:
    with transaction.atomic():
        locked = Terminal.objects.select_for_update().select_related("merchant").get(pk=terminal.pk)
        if locked.status not in allowed_from:
            raise TerminalError(
                "terminal_state",
                f"A {locked.get_status_display()} terminal cannot be {to}.",
                status_code=409,
            )
        previous = locked.status
        locked.status = to
        locked.status_reason = reason[:200]
        fields = ["status", "status_reason"]
        if revoke_keys or to == Terminal.Status.RETIRED:
            TerminalKey.objects.filter(terminal=locked).update(expires_at=timezone.now())
            locked.activation_code_hash = ""
            fields.append("activation_code_hash")
        locked.save(update_fields=fields)
        _auth_cache_forget_on_commit(locked)
        audit_record(
            action=action,
            actor=actor,
            merchant=locked.merchant,
            target=locked,
            data={"from": previous, "to": to, "reason": reason[:200]},
            request=request,
        )
    return locked


def terminal_suspend(
    *, terminal: Terminal, actor: Any, reason: str = "", request: Any = None
) -> Terminal:
    """Refused at once: the next request of a suspended terminal fails."""
    return _status_change(
        terminal,
        allowed_from=(Terminal.Status.PENDING, Terminal.Status.ACTIVE),
        to=Terminal.Status.SUSPENDED,
        action="terminal.suspended",
        actor=actor,
        reason=reason,
        request=request,
    )


def terminal_resume(*, terminal: Terminal, actor: Any, request: Any = None) -> Terminal:
    _merchant_must_be_active(terminal.merchant)
    with transaction.atomic():
        has_key = TerminalKey.objects.filter(terminal=terminal, expires_at__isnull=True).exists()
        return _status_change(
            terminal,
            allowed_from=(Terminal.Status.SUSPENDED,),
            to=Terminal.Status.ACTIVE if has_key else Terminal.Status.PENDING,
            action="terminal.resumed",
            actor=actor,
            reason="",
            request=request,
        )


def terminal_retire(
    *, terminal: Terminal, actor: Any, reason: str = "", request: Any = None
) -> Terminal:
    """Final: the keys are revoked and the terminal never works again."""
    return _status_change(
        terminal,
        allowed_from=(Terminal.Status.PENDING, Terminal.Status.ACTIVE, Terminal.Status.SUSPENDED),
        to=Terminal.Status.RETIRED,
        action="terminal.retired",
        actor=actor,
        reason=reason,
        request=request,
        revoke_keys=True,
    )


def terminal_signature_failure_record(
    *, terminal: Terminal | None, code: str, key_id: str, request: Any = None
) -> None:
    """A bad signature, digest, timestamp or a replay is a security event. A
    burst of them from one terminal (TERMINAL_FAILURE_BURST_LIMIT within
    TERMINAL_FAILURE_BURST_WINDOW seconds) suspends it: a stolen terminal
    being probed, or a man in the middle."""
    data = {"code": code, "key_id": key_id[:64], "path": getattr(request, "path", "")[:200]}
    if terminal is not None:
        data["terminal_id"] = str(terminal.public_id)
    security_event_record(
        kind="terminal_signature_replay"
        if code == "signature_replayed"
        else "terminal_signature_failure",
        severity=SecurityEvent.Severity.WARNING,
        merchant=terminal.merchant if terminal else None,
        actor=_terminal_actor(terminal) if terminal else None,
        data=data,
        request=request,
    )
    if terminal is None or terminal.status != Terminal.Status.ACTIVE:
        return
    over = rate_limit_hit(
        "terminal-failures",
        str(terminal.public_id),
        settings.TERMINAL_FAILURE_BURST_LIMIT,
        settings.TERMINAL_FAILURE_BURST_WINDOW,
    )
    if over is None:
        return
    try:
        terminal_suspend(
            terminal=terminal,
            actor="system",
            reason=f"burst of signature failures ({code})",
            request=request,
        )
    except TerminalError:
        return  # already suspended by a concurrent request
    security_event_record(
        kind="terminal_suspended_burst",
        severity=SecurityEvent.Severity.CRITICAL,
        merchant=terminal.merchant,
        actor="system",
        data={
            "terminal_id": str(terminal.public_id),
            "last_code": code,
            "limit": settings.TERMINAL_FAILURE_BURST_LIMIT,
            "window_seconds": settings.TERMINAL_FAILURE_BURST_WINDOW,
        },
        request=request,
    )


def terminal_seen(*, terminal: Terminal) -> None:
    """Stamps activity (the caller throttles it to once a minute; no audit:
    it is not an action)."""
    now = timezone.now()
    Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=now)
    terminal.last_seen_at = now


def terminal_location_report(
    *, terminal: Terminal, latitude: Decimal | float | str, longitude: Decimal | float | str
) -> None:
    """Stores the coordinates a terminal reported (each payment does). Not
    audited: it is telemetry; the risk decision that uses it is recorded."""
    lat, lng = (
        Decimal(str(latitude)).quantize(Decimal("0.000001")),
        Decimal(str(longitude)).quantize(Decimal("0.000001")),
    )
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise TerminalError("invalid_location", "Coordinates are out of range.", field="latitude")
    now = timezone.now()
    Terminal.objects.filter(pk=terminal.pk).update(
        last_latitude=lat, last_longitude=lng, last_location_at=now, last_seen_at=now
    )
    terminal.last_latitude, terminal.last_longitude, terminal.last_location_at = lat, lng, now


def _operator_record(terminal: Terminal, operator_id: str) -> OperatorPin:
    try:
        operator_uuid = uuid.UUID(str(operator_id))
    except ValueError:
        operator_uuid = None
    record = (
        OperatorPin.objects.for_merchant(terminal.merchant)
        .select_related("membership__user", "membership__merchant")
        .filter(
            membership__public_id=operator_uuid,
            membership__is_active=True,
            membership__role__in=OPERATOR_ROLES,
        )
        .first()
        if operator_uuid
        else None
    )
    if record is None:
        raise TerminalError(
            "operator_unknown",
            "No such operator at this merchant.",
            field="operator_id",
            status_code=404,
        )
    return record


def operator_pin_check(
    *, terminal: Terminal, operator_id: str, pin_sealed: str, request: Any = None
) -> Membership:
    """Verifies an operator's transaction password sent sealed to the server's
    key (sign-in, and the supervisor PIN of refunds and voids) through the
    accounts service, which counts wrong PINs towards a lockout. The clear PIN
    never leaves this function."""
    membership = _operator_record(terminal, operator_id).membership
    try:
        pin = secret_open(pin_sealed)
    except SecretUndecryptable as exc:
        raise TerminalError(
            "secret_undecryptable",
            "The sealed PIN cannot be opened with the server's key.",
            field="pin_sealed",
        ) from exc
    if operator_pin_is_locked(membership):
        raise TerminalError(
            "operator_locked",
            "Too many wrong PINs; this operator is locked for now.",
            status_code=423,
        )
    ok = operator_pin_verify(membership=membership, pin=pin, request=request)
    del pin
    data = {"terminal_id": str(terminal.public_id)}
    with transaction.atomic():
        audit_record(
            action="terminal.operator_verified" if ok else "terminal.operator_pin_wrong",
            actor=_terminal_actor(terminal),
            merchant=terminal.merchant,
            target=membership,
            data=data,
            request=request,
        )
    if ok:
        return membership
    raise TerminalError(
        "operator_pin_wrong", "Wrong transaction password.", field="pin_sealed", status_code=403
    )

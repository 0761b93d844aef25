"""Request authentication of the terminal API: every request is signed by an
active terminal (RFC 9421, DESIGN.md §5). Reusable by every terminal
endpoint through `TerminalAPIView` (apps/terminals/api/base.py)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication

from apps.accounts.models import Merchant
from apps.core.api import ApiError
from apps.terminals.api.messages import DjangoRequestMessage
from apps.terminals.crypto import ed25519_public_key
from apps.terminals.models import Terminal
from apps.terminals.replay import signed_request_admit
from apps.terminals.selectors import TerminalAuth, terminal_auth_find
from apps.terminals.services import terminal_seen, terminal_signature_failure_record
from apps.terminals.signing import (
    SignatureError,
    created_check,
    request_signature_input_parse,
    request_verify,
)

SIGNATURE_STATUS = {
    "signature_missing": 401,
    "signature_malformed": 401,
    "signature_unknown_key": 401,
    "signature_invalid": 401,
    "digest_mismatch": 401,
    "signature_expired": 401,
    "signature_replayed": 401,
    "terminal_inactive": 403,
    "merchant_not_active": 403,
}
# Failures that count towards the burst that suspends a terminal.
BURST_CODES = {"signature_invalid", "digest_mismatch", "signature_expired", "signature_replayed"}


class TerminalPrincipal(AnonymousUser):
    """request.user of a signed terminal request: no user account, no
    permissions, but authenticated (as the terminal). `public_id` makes audit
    records name the terminal."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    @property
    def public_id(self) -> str:
        # Read by audit records only: not built on every request.
        return f"terminal:{self.terminal.public_id}"

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    def __str__(self) -> str:
        return f"terminal {self.terminal.serial_number}"


def signature_error(code: str, message: str) -> ApiError:
    return ApiError(code, message, status_code=SIGNATURE_STATUS.get(code, 401))


def _terminal_checked(found: TerminalAuth | None) -> TerminalAuth:
    """The checks of the terminal a keyid names: known, active, its merchant
    active, a usable key."""
    if found is None:
        raise SignatureError("signature_unknown_key", "The keyid names no terminal.")
    terminal = found.terminal
    if terminal.status != Terminal.Status.ACTIVE:
        raise SignatureError("terminal_inactive", f"This terminal is {terminal.status}.")
    if terminal.merchant.status != Merchant.Status.ACTIVE:
        raise SignatureError("merchant_not_active", "This terminal's merchant is not active.")
    if not found.public_keys:
        raise SignatureError("signature_unknown_key", "This terminal has no valid key.")
    return found


def terminal_request_authenticate(request: Any) -> Terminal:
    """Verifies a Django request's signature; returns the active terminal and
    sets request.terminal_nonce. Raises ApiError with the failure's own code
    (docs/api-errors.md)."""
    body = request.body
    terminal: Terminal | None = None
    key_id = ""
    try:
        parsed = request_signature_input_parse(request.headers, has_body=bool(body))
        key_id = parsed.key_id
        found = _terminal_checked(terminal_auth_find(key_id=key_id))
        terminal = found.terminal
        skew_seconds = settings.TERMINAL_CLOCK_SKEW_SECONDS
        created_check(parsed.created, skew_seconds=skew_seconds, now=time.time())
        request_verify(
            DjangoRequestMessage(request),
            key_id=key_id,
            public_keys=[ed25519_public_key(k) for k in found.public_keys],
            body=body,
            skew_seconds=skew_seconds,
        )
        # Claimed only after the signature verifies, so nobody can burn a
        # genuine terminal's nonces with forged requests.
        admission = signed_request_admit(
            scope=str(terminal.public_id),
            nonce=parsed.nonce,
            rate_limit=settings.TERMINAL_RATE_LIMIT,
        )
        if not admission.nonce_fresh:
            raise SignatureError("signature_replayed", "This nonce was already used.")
    except SignatureError as exc:
        if exc.code in BURST_CODES or exc.code == "signature_unknown_key":
            terminal_signature_failure_record(
                terminal=terminal if exc.code in BURST_CODES else None,
                code=exc.code,
                key_id=key_id,
                request=request,
            )
        raise signature_error(exc.code, exc.message) from None
    if admission.retry_after is not None:
        raise ApiError(
            "rate_limited",
            f"Too many requests from this terminal; retry after {admission.retry_after} s.",
            status_code=429,
            retry_after=admission.retry_after,
        )
    if admission.seen_due:
        terminal_seen(terminal=terminal)
    request.terminal_nonce = parsed.nonce
    return terminal


def terminal_replay_refuse(*, terminal: Terminal, request: Any) -> ApiError:
    """The refusal of a replay found by a durable nonce record (after Redis
    forgot the nonce), recorded as any replay is."""
    terminal_signature_failure_record(
        terminal=terminal,
        code="signature_replayed",
        key_id=str(terminal.public_id),
        request=request,
    )
    return signature_error("signature_replayed", "This nonce was already used.")


class TerminalSignatureAuthentication(BaseAuthentication):
    """DRF authentication: sets request.terminal (on the DRF request and the
    underlying Django request) and request.user to a TerminalPrincipal."""

    def authenticate(self, request: Any) -> tuple[TerminalPrincipal, Terminal]:
        terminal = terminal_request_authenticate(request._request)
        request._request.terminal = terminal
        return TerminalPrincipal(terminal), terminal

    def authenticate_header(self, request: Any) -> str:
        return 'Signature realm="anfu-terminal"'

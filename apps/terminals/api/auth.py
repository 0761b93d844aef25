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
from apps.terminals.models import Terminal
from apps.terminals.replay import signed_request_admit
from apps.terminals.selectors import (
    TerminalAuth,
    terminal_auth_find,
    terminal_auth_local,
    terminal_auth_local_forget,
)
from apps.terminals.services import terminal_seen, terminal_signature_failure_record
from apps.terminals.signing import (
    SignatureError,
    created_check,
    request_verify_parsed,
    signature_fields_parse,
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


def _terminal_checked(request: Any, parsed: Any, body: bytes, found: Any) -> Terminal:
    """The checks of one terminal state: known, active, its merchant active,
    a usable key, and the signature verifying with one of its keys."""
    if found is None:
        raise SignatureError("signature_unknown_key", "The keyid names no terminal.")
    terminal = found.terminal
    if terminal.status != Terminal.Status.ACTIVE:
        raise SignatureError("terminal_inactive", f"This terminal is {terminal.status}.")
    if terminal.merchant.status != Merchant.Status.ACTIVE:
        raise SignatureError("merchant_not_active", "This terminal's merchant is not active.")
    if not found.public_keys:
        raise SignatureError("signature_unknown_key", "This terminal has no valid key.")
    skew_seconds = settings.TERMINAL_CLOCK_SKEW_SECONDS
    created_check(parsed.created, skew_seconds=skew_seconds, now=time.time())
    request_verify_parsed(
        DjangoRequestMessage(request),
        parsed,
        public_keys=found.public_keys,
        body=body,
        skew_seconds=skew_seconds,
    )
    return terminal


def _ip_hit_count(request: Any) -> None:
    """Counts the request's per-IP API hit (RateLimitMiddleware left it
    pending) unless the admission has: before anything leaves this process
    (an auth state from Redis or the database) and before a failure is
    recorded, so a client over its limit costs no more than a refusal."""
    pending = getattr(request, "rate_limit_pending", None)
    if pending is not None and (retry_after := pending.count()) is not None:
        raise _ip_rate_limited(retry_after)


def _ip_rate_limited(retry_after: int) -> ApiError:
    """The refusal of a client IP over the API limit (as RateLimitMiddleware's)."""
    return ApiError(
        "rate_limited",
        f"Too many requests; retry after {retry_after} s.",
        status_code=429,
        retry_after=retry_after,
    )


def _terminal_auth_loaded(request: Any, key_id: str) -> TerminalAuth | None:
    """The terminal's auth state from Redis or the database (not this
    process's copy), once the request's per-IP hit is counted."""
    _ip_hit_count(request)
    terminal_auth_local_forget(key_id)
    return terminal_auth_find(key_id=key_id)


def terminal_request_authenticate(request: Any) -> Terminal:
    """Verifies a Django request's signature; returns the active terminal.
    Raises ApiError with the failure's own code (docs/api-errors.md)."""
    # Django reads no body without a Content-Length (WSGIRequest takes it
    # as 0), so such a request's body is empty without reading a stream.
    meta = request.META
    body = request.body if meta.get("CONTENT_LENGTH") not in (None, "", "0") else b""
    terminal: Terminal | None = None
    key_id = ""
    try:
        # The fields as the WSGI environ holds them (what request.headers
        # maps): a plain dict, read on every signed request.
        parsed = signature_fields_parse(
            meta.get("HTTP_SIGNATURE_INPUT"),
            meta.get("HTTP_SIGNATURE"),
            has_idempotency_key="HTTP_IDEMPOTENCY_KEY" in meta,
            has_body=bool(body),
        )
        # The response signature binds to this member: no second parse.
        request.terminal_signature_member = parsed.signature_member
        key_id = parsed.key_id
        found = terminal_auth_local(key_id=key_id)
        if found is not None:
            terminal = found.terminal
            try:
                terminal = _terminal_checked(request, parsed, body, found)
            except SignatureError:
                # This process's copy may predate a change that makes the
                # request good (a new key, a resumed terminal): never refuse
                # on it alone.
                found = None
        if found is None:
            found = _terminal_auth_loaded(request, key_id)
            terminal = found.terminal if found is not None else None
            terminal = _terminal_checked(request, parsed, body, found)
        # Claimed only after the signature verifies, so nobody can burn a
        # genuine terminal's nonces with forged requests. The same round
        # trip counts the client IP's hit of the API limit and reads the
        # terminal's auth cache entry: a state taken from this process's
        # copy is trusted only if Redis still holds those bytes (any status
        # or key change replaces them), else checked again.
        admission = signed_request_admit(
            # A local copy is held under the canonical id: the keyid itself.
            scope=key_id if found.local else str(terminal.public_id),
            nonce=parsed.nonce,
            rate_limit=settings.TERMINAL_RATE_LIMIT,
            auth_cache_key=found.cache_key if found.local else "",
            ip_hit=getattr(request, "rate_limit_pending", None),
        )
        if admission.ip_retry_after is not None:
            raise _ip_rate_limited(admission.ip_retry_after)
        if found.local and admission.auth_stamp != found.stamp:
            found = _terminal_auth_loaded(request, key_id)
            terminal = found.terminal if found is not None else None
            terminal = _terminal_checked(request, parsed, body, found)
        if not admission.nonce_fresh:
            raise SignatureError("signature_replayed", "This nonce was already used.")
    except SignatureError as exc:
        _ip_hit_count(request)
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
    return terminal


class TerminalSignatureAuthentication(BaseAuthentication):
    """DRF authentication: sets request.terminal (on the DRF request and the
    underlying Django request) and request.user to a TerminalPrincipal.
    It counts the request's per-IP API hit itself (RateLimitMiddleware),
    in the round trip that claims the nonce."""

    counts_ip_hit = True

    def authenticate(self, request: Any) -> tuple[TerminalPrincipal, Terminal]:
        terminal = terminal_request_authenticate(request._request)
        request._request.terminal = terminal
        return TerminalPrincipal(terminal), terminal

    def authenticate_header(self, request: Any) -> str:
        return 'Signature realm="anfu-terminal"'

"""The transaction password (operator PIN) verifier: the format terminals
implement to check a cashier's PIN offline (documented in docs/terminal-api.md).

verifier = base64(PBKDF2-HMAC-SHA256(pin_utf8, salt_bytes, iterations, 32))
with salt = 16 random bytes, sent base64-encoded.

A 6-digit PIN cannot be protected by hashing cost alone; the record lives
only on the merchant's own terminals, and lockout limits online guessing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PIN_ALGORITHM = "pbkdf2-sha256"
PIN_ITERATIONS = 60_000


def pin_verifier_compute(pin: str, *, salt: bytes, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations, dklen=32)
    return base64.b64encode(digest).decode()


def pin_verifier_new(pin: str) -> tuple[str, int, str]:
    """(salt_b64, iterations, verifier_b64) for a new PIN."""
    salt = secrets.token_bytes(16)
    return base64.b64encode(salt).decode(), PIN_ITERATIONS, pin_verifier_compute(pin, salt=salt, iterations=PIN_ITERATIONS)


def pin_verifier_check(pin: str, *, salt_b64: str, iterations: int, verifier_b64: str) -> bool:
    computed = pin_verifier_compute(pin, salt=base64.b64decode(salt_b64), iterations=iterations)
    return hmac.compare_digest(computed, verifier_b64)

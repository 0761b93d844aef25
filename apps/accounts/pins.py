"""The transaction password (operator PIN) verifier: the format terminals
implement to check a cashier's PIN offline (documented in docs/terminal-api.md).

verifier = base64(PBKDF2-HMAC-SHA256(pin_utf8, salt_bytes, iterations, 32))
with salt = 16 random bytes, sent base64-encoded.

A 6-digit PIN cannot be protected by hashing cost alone; the record lives
only on the merchant's own terminals, and lockout limits online guessing.
"""

from __future__ import annotations

import base64
import datetime
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
    return (
        base64.b64encode(salt).decode(),
        PIN_ITERATIONS,
        pin_verifier_compute(pin, salt=salt, iterations=PIN_ITERATIONS),
    )


def pin_verifier_check(pin: str, *, salt_b64: str, iterations: int, verifier_b64: str) -> bool:
    computed = pin_verifier_compute(pin, salt=base64.b64decode(salt_b64), iterations=iterations)
    return hmac.compare_digest(computed, verifier_b64)


# --- weak 6-digit secrets (payment password and operator PIN alike) ---------

# Cyclic: 890123 and 109876 are runs too.
_SEQUENCE = "0123456789012345"


def pin_weakness(
    pin: str, *, birth_date: datetime.date | None = None, id_number: str = "", phone: str = ""
) -> tuple[str, str] | None:
    """Why `pin` is refused as a 6-digit secret, as (code, message), or None.
    DESIGN.md §4: repeated or sequential digits, the holder's birth date, the
    last six of their ID number or phone."""
    if len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        return "pin_format", "The PIN must be exactly 6 digits."
    if len(set(pin)) == 1:
        return "pin_repeated", "The PIN may not repeat one digit (like 111111)."
    if pin in _SEQUENCE or pin in _SEQUENCE[::-1]:
        return (
            "pin_sequential",
            "The PIN may not be a run of consecutive digits (like 123456 or 654321).",
        )
    if len(set(pin)) == 2 or pin[:3] == pin[3:] or pin[:2] * 3 == pin:
        return (
            "pin_pattern",
            "The PIN is too simple a pattern (like 121212 or 123123); use more different digits.",
        )
    if birth_date is not None:
        forms = {
            birth_date.strftime("%y%m%d"),
            birth_date.strftime("%m%d%y"),
            birth_date.strftime("%d%m%y"),
            birth_date.strftime("%Y%m")[-6:],
            birth_date.strftime("%Y%m%d")[2:],
        }
        if pin in forms:
            return "pin_birth_date", "The PIN may not be your birth date."
    digits_of_id = "".join(c for c in id_number if c.isdigit())
    if id_number and (pin == id_number[-6:] or pin == digits_of_id[-6:]):
        return "pin_id_fragment", "The PIN may not be the last six characters of your ID number."
    if phone and pin == phone[-6:]:
        return "pin_phone_fragment", "The PIN may not be the last six digits of your phone number."
    return None

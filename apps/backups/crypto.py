"""Backup keys: age X25519 recipients (public) and identities (secret).

These are deliberately not the field-encryption keys: a backup key that leaks
exposes old dumps only, and rotating PII keys never strands a backup. Old
backups stay readable after a recipient is added because each artifact is
encrypted to the recipients of its own day, recorded by fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from pyrage import x25519


class BackupKeyError(Exception):
    pass


def recipient_fingerprint(recipient: str) -> str:
    return "sha256:" + hashlib.sha256(recipient.strip().encode()).hexdigest()[:16]


def recipients_parse(values: Iterable[str]) -> list[x25519.Recipient]:
    parsed = []
    for value in values:
        value = value.strip()
        if not value or value.startswith("#"):
            continue
        if value.startswith("AGE-SECRET-KEY-"):
            # A pasted identity would put the secret in the database.
            raise ValueError("That is an age identity (secret key); give its public key (age1...).")
        try:
            parsed.append(x25519.Recipient.from_str(value))
        except Exception as exc:
            raise ValueError(f"Not an age public key: {value[:12]}...") from exc
    return parsed


def configured_recipients(extra: str = "") -> list[str]:
    """The recipients a new backup is encrypted to: the environment's plus
    the policy's, de-duplicated, in order."""
    seen: dict[str, None] = {}
    for value in [*settings.BACKUP_AGE_RECIPIENTS, *extra.split()]:
        value = value.strip()
        if value and not value.startswith("#"):
            seen.setdefault(value, None)
    recipients_parse(seen)
    return list(seen)


def identities_parse(text: str) -> list[x25519.Identity]:
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue  # age-keygen writes comments ("# public key: ...")
        try:
            identities.append(x25519.Identity.from_str(line))
        except Exception as exc:
            raise BackupKeyError(
                "BACKUP_AGE_IDENTITY holds something that is not an age identity"
            ) from exc
    return identities


def configured_identities() -> list[x25519.Identity]:
    text = settings.BACKUP_AGE_IDENTITY.replace(",", "\n")
    if settings.BACKUP_AGE_IDENTITY_FILE:
        text += "\n" + Path(settings.BACKUP_AGE_IDENTITY_FILE).read_text()
    identities = identities_parse(text)
    if not identities:
        raise BackupKeyError(
            "No backup identity: set BACKUP_AGE_IDENTITY or BACKUP_AGE_IDENTITY_FILE on this host."
        )
    return identities

"""PII at rest: django-encrypted-model-fields (Fernet, FIELD_ENCRYPTION_KEY)
for the values, a keyed HMAC blind index (BLIND_INDEX_KEY) for lookups and
duplicate detection, and the checks that make a wrong key fail loudly.

The library silently hands back the ciphertext when a key cannot decrypt a
value; our PII fields refuse instead (FieldKeyMismatch), and the canary row
lets a deployment find out at start, before any PII is read.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import cryptography.fernet
import encrypted_model_fields.fields as emf
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CANARY_PLAINTEXT = "anfu-field-key-canary-v1"


class FieldKeyMismatch(ImproperlyConfigured):
    """FIELD_ENCRYPTION_KEY cannot decrypt data that is in the database."""


def crypter() -> cryptography.fernet.MultiFernet:
    # Read at call time: the library builds its MultiFernet at import, and a
    # key rotation (or a test) may replace it.
    return emf.CRYPTER


def _decrypt_or_raise(value: str, field_name: str) -> str:
    try:
        return crypter().decrypt(value.encode()).decode()
    except cryptography.fernet.InvalidToken as exc:
        raise FieldKeyMismatch(
            f"FIELD_ENCRYPTION_KEY cannot decrypt {field_name}: the key is wrong or was rotated away. "
            "Refusing to go on with ciphertext."
        ) from exc


class _StrictDecryptMixin:
    """Values read from the database must decrypt; anything else is a key problem."""

    def from_db_value(self, value, expression, connection):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        label = f"{self.model._meta.label}.{self.name}"  # type: ignore[attr-defined]
        return super().to_python(_decrypt_or_raise(value, label))  # type: ignore[misc]


class PIICharField(_StrictDecryptMixin, emf.EncryptedCharField):
    """An encrypted CharField that fails loudly on a wrong key."""


class PIITextField(_StrictDecryptMixin, emf.EncryptedTextField):
    """An encrypted TextField that fails loudly on a wrong key."""


def encrypt_bytes(data: bytes) -> bytes:
    return crypter().encrypt(data)


def decrypt_bytes(token: bytes, *, label: str = "a document") -> bytes:
    try:
        return crypter().decrypt(bytes(token))
    except cryptography.fernet.InvalidToken as exc:
        raise FieldKeyMismatch(f"FIELD_ENCRYPTION_KEY cannot decrypt {label}") from exc


def rotate_bytes(token: bytes) -> bytes:
    return crypter().rotate(bytes(token))


def blind_index(kind: str, value: str) -> str:
    """Keyed HMAC-SHA256 of a normalised value: equal values give equal
    indexes, but the index says nothing about the value without the key.
    `kind` separates the domains (an ID number never matches a phone)."""
    normalised = unicodedata.normalize("NFKC", value).strip().upper().replace(" ", "")
    key = settings.BLIND_INDEX_KEY.encode()
    return hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


def field_key_verify() -> None:
    """Raises FieldKeyMismatch when the configured key cannot read the canary;
    writes the canary on a fresh database."""
    from apps.accounts.models import EncryptionCanary

    canary = EncryptionCanary.objects.filter(pk=1).values_list("token", flat=True).first()
    if canary is None:
        EncryptionCanary.objects.get_or_create(
            pk=1, defaults={"token": encrypt_bytes(CANARY_PLAINTEXT.encode()).decode()}
        )
        return
    plaintext = decrypt_bytes(canary.encode(), label="the encryption canary").decode()
    if plaintext != CANARY_PLAINTEXT:
        raise FieldKeyMismatch("the encryption canary decrypted to the wrong value")

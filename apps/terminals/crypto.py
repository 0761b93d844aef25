"""Key material of the terminal API: the server's keys from the environment,
key ids, and the sealed-box secret transport (payment passwords, operator PINs).

Public keys travel as base64 of their raw 32 bytes. A server key id is
"anfu-" + the first 16 hex digits of SHA-256 over the raw public key, so a
terminal can check that a published key and its id belong together.

This module is imported by the terminal client too (apps/terminals/client.py):
the functions that need no Django settings must not touch them (importing
`django.conf.settings` reads none).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox


class SecretUndecryptable(Exception):
    """A sealed secret that none of the server's encryption keys opens."""


def b64decode_key(value: str) -> bytes:
    """The raw 32 bytes of a base64 key; ValueError when it is not one."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if len(raw) != 32:
        raise ValueError("a key is 32 bytes")
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def key_id_for(public_key_raw: bytes) -> str:
    return "anfu-" + hashlib.sha256(public_key_raw).hexdigest()[:16]


def ed25519_public_raw(private_key: ed25519.Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def ed25519_private_raw(private_key: ed25519.Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


# A terminal's public key is decoded on every signed request it makes; the
# decoded key object is immutable and no secret, so it is kept.
@lru_cache(maxsize=4096)
def ed25519_public_key(public_b64: str) -> ed25519.Ed25519PublicKey:
    """ValueError when `public_b64` is not base64 of a raw 32-byte key."""
    return ed25519.Ed25519PublicKey.from_public_bytes(b64decode_key(public_b64))


@dataclass(frozen=True)
class ServerSigningKey:
    key_id: str
    private_key: ed25519.Ed25519PrivateKey
    public_b64: str


@dataclass(frozen=True)
class ServerEncryptionKey:
    key_id: str
    private_key: PrivateKey
    public_b64: str


@lru_cache(maxsize=4)
def _signing_keys(configured: tuple[str, ...]) -> tuple[ServerSigningKey, ...]:
    keys = []
    for value in configured:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(b64decode_key(value))
        public_raw = ed25519_public_raw(private)
        keys.append(ServerSigningKey(key_id_for(public_raw), private, b64(public_raw)))
    return tuple(keys)


@lru_cache(maxsize=4)
def _encryption_keys(configured: tuple[str, ...]) -> tuple[ServerEncryptionKey, ...]:
    keys = []
    for value in configured:
        private = PrivateKey(b64decode_key(value))
        public_raw = bytes(private.public_key)
        keys.append(ServerEncryptionKey(key_id_for(public_raw), private, b64(public_raw)))
    return tuple(keys)


def server_signing_keys() -> tuple[ServerSigningKey, ...]:
    """The configured response-signing keys; the first is current."""
    keys = _signing_keys(tuple(settings.TERMINAL_SIGNING_KEYS))
    if not keys:
        raise RuntimeError("TERMINAL_SIGNING_KEYS is empty")
    return keys


def server_encryption_keys() -> tuple[ServerEncryptionKey, ...]:
    """The configured secret-encryption keys; the first is current."""
    keys = _encryption_keys(tuple(settings.TERMINAL_ENCRYPTION_KEYS))
    if not keys:
        raise RuntimeError("TERMINAL_ENCRYPTION_KEYS is empty")
    return keys


def server_public_keys() -> dict:
    """What a terminal learns at activation and from its config: every
    published key, current first."""
    return {
        "signing": [
            {"key_id": k.key_id, "alg": "ed25519", "public_key": k.public_b64}
            for k in server_signing_keys()
        ],
        "encryption": [
            {"key_id": k.key_id, "alg": "x25519-sealed-box", "public_key": k.public_b64}
            for k in server_encryption_keys()
        ],
    }


def secret_seal(server_enc_public_key_b64: str, plaintext: str) -> str:
    """Client side: encrypt a secret (payment password, operator PIN) to the
    server's X25519 key as a libsodium sealed box; base64 of the box."""
    box = SealedBox(PublicKey(b64decode_key(server_enc_public_key_b64)))
    return b64(box.encrypt(plaintext.encode()))


def secret_open(ciphertext_b64: str) -> str:
    """Server side: open a sealed secret with the current or a still-valid
    previous encryption key. Raises SecretUndecryptable. The clear secret
    exists only in the caller's frame: never log it, never store it."""
    try:
        box_bytes = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise SecretUndecryptable("not base64") from exc
    for key in server_encryption_keys():
        try:
            return SealedBox(key.private_key).decrypt(box_bytes).decode()
        except (CryptoError, UnicodeDecodeError):
            continue
    raise SecretUndecryptable("no server key opens this secret")

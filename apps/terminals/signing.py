"""The wire format of DESIGN.md §5, on top of the `http-message-signatures`
package (RFC 9421, its Content-Digest from RFC 9530) and `http-sf`. No
database and no Django settings here: the terminal client imports this
module too.

Request:  Signature-Input: sig=("@method" "@target-uri" ["idempotency-key"]
          ["content-digest"]);created=…;keyid="<terminal id>";alg="ed25519";nonce="…"
Response: Signature-Input: sig=("@status" "signature";req;key="sig"
          "content-digest");created=…;keyid="<server key id>";alg="ed25519"

A message given to these functions has `method`, `url` (absolute, encoded)
and `headers`; a response has `status_code`, `headers` and `request` (the
request message it answers). requests' PreparedRequest/Response fit as is.
"""

from __future__ import annotations

import base64
import datetime
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

LABEL = "sig"
ALG = "ed25519"
REQUEST_BINDING = '"signature";req;key="sig"'
RESPONSE_COMPONENTS = ("@status", REQUEST_BINDING, "content-digest")
NONCE_MIN, NONCE_MAX = 16, 128
_REQUIRED_PARAMS = {"created", "keyid", "alg", "nonce"}


class SignatureError(Exception):
    """A signature that cannot be accepted; `code` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def request_components(*, has_idempotency_key: bool, has_body: bool) -> tuple[str, ...]:
    """The covered components a request must list, in this order."""
    return (
        ("@method", "@target-uri")
        + (("idempotency-key",) if has_idempotency_key else ())
        + (("content-digest",) if has_body else ())
    )


def _signer() -> HTTPMessageSigner:
    return HTTPMessageSigner(signature_algorithm=algorithms.ED25519)


def _headers_write(message: Any, signature_params: str, signature: bytes) -> None:
    # prepare() built the signature base; the two fields are written here
    # rather than by apply(), which builds the whole base a second time only
    # to check that the message did not change in between (nothing runs in
    # between) and would double what signing costs.
    message.headers["Signature-Input"] = f"{LABEL}={signature_params}"
    message.headers["Signature"] = f"{LABEL}=:{base64.b64encode(signature).decode()}:"


def request_sign(
    message: Any,
    *,
    private_key: ed25519.Ed25519PrivateKey,
    key_id: str,
    body: bytes | None,
    nonce: str | None = None,
    created: datetime.datetime | None = None,
) -> None:
    """Adds Content-Digest (when there is a body), Signature-Input and Signature."""
    has_key = any(name.lower() == "idempotency-key" for name in message.headers)
    prepared = _signer().prepare(
        message,
        key_id=key_id,
        created=created or _utc_now(),
        nonce=nonce or secrets.token_urlsafe(18),
        label=LABEL,
        # The library appends "content-digest" last when given the body.
        covered_component_ids=list(request_components(has_idempotency_key=has_key, has_body=False)),
        body=body or None,
    )
    _headers_write(message, prepared.signature_params, private_key.sign(prepared.signature_base))


@dataclass(frozen=True)
class SignatureInput:
    """The parsed, well-formed `sig` member of a request's Signature-Input."""

    components: tuple[str, ...]
    created: int
    key_id: str
    nonce: str


def request_signature_input_parse(headers: Any, *, has_body: bool) -> SignatureInput:
    """Checks the shape of a request's signature before any key is looked up:
    one `sig` label, the exact covered components, the required parameters.
    (The library parses the fields again when it verifies; this parse is
    what lets a malformed request be refused, with its own code, for the
    price of a parse instead of a key lookup.)"""
    signature_input, signature = headers.get("Signature-Input"), headers.get("Signature")
    if not signature_input or not signature:
        raise SignatureError(
            "signature_missing", "The request carries no Signature-Input and Signature."
        )
    try:
        inputs = http_sf.parse(signature_input.encode(), tltype="dictionary")
        signatures = http_sf.parse(signature.encode(), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise SignatureError(
            "signature_malformed", "Signature-Input or Signature is not a valid dictionary."
        ) from exc
    if list(inputs) != [LABEL] or list(signatures) != [LABEL]:
        raise SignatureError(
            "signature_malformed", 'Exactly one signature, labelled "sig", is expected.'
        )
    members, params = inputs[LABEL]
    if not isinstance(members, list) or not isinstance(signatures[LABEL][0], bytes):
        raise SignatureError("signature_malformed", "The sig member has the wrong structured type.")
    if any(item_params for _value, item_params in members):
        raise SignatureError("signature_malformed", "Covered components take no parameters here.")
    components = tuple(value for value, _params in members)
    expected = request_components(
        has_idempotency_key="Idempotency-Key" in headers, has_body=has_body
    )
    if components != expected:
        raise SignatureError(
            "signature_malformed",
            "Covered components must be " + " ".join(f'"{c}"' for c in expected) + ".",
        )
    if set(params) != _REQUIRED_PARAMS:
        raise SignatureError(
            "signature_malformed", "Parameters must be exactly created, keyid, alg and nonce."
        )
    created, key_id, alg, nonce = params["created"], params["keyid"], params["alg"], params["nonce"]
    if type(created) is not int or not isinstance(key_id, str) or not isinstance(nonce, str):
        raise SignatureError(
            "signature_malformed", "created is an integer; keyid and nonce are strings."
        )
    if alg != ALG:
        raise SignatureError("signature_malformed", 'alg must be "ed25519".')
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise SignatureError(
            "signature_malformed", f"nonce must be {NONCE_MIN} to {NONCE_MAX} characters."
        )
    return SignatureInput(components=components, created=created, key_id=key_id, nonce=nonce)


def created_check(created: int, *, skew_seconds: int, now: float) -> None:
    if abs(now - created) > skew_seconds:
        raise SignatureError(
            "signature_expired", f"created is more than {skew_seconds} s from the server clock."
        )


def _verifier(
    public_keys: dict[str, ed25519.Ed25519PublicKey], skew_seconds: int
) -> HTTPMessageVerifier:
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys=public_keys, private_keys={}),
    )
    verifier.max_clock_skew = datetime.timedelta(seconds=skew_seconds)
    return verifier


def request_verify(
    message: Any,
    *,
    key_id: str,
    public_keys: Iterable[ed25519.Ed25519PublicKey],
    body: bytes,
    skew_seconds: int,
) -> None:
    """Verifies the signature with any of the terminal's valid keys (newest
    first: rotation), then the body against the Content-Digest it covers
    (request_signature_input_parse requires the digest whenever there is a
    body)."""
    for public_key in public_keys:
        try:
            _verifier({key_id: public_key}, skew_seconds).verify(
                message, max_age=datetime.timedelta(seconds=skew_seconds)
            )
        except (InvalidSignature, HTTPMessageSignaturesException):
            continue
        break
    else:
        raise SignatureError(
            "signature_invalid", "The signature does not verify with the terminal's key."
        )
    if body:
        try:
            ContentDigest.verify(message.headers.get("Content-Digest", ""), body)
        except (InvalidSignature, HTTPMessageSignaturesException) as exc:
            raise SignatureError(
                "digest_mismatch", "Content-Digest does not match the request body."
            ) from exc


def response_sign(
    message: Any,
    *,
    private_key: ed25519.Ed25519PrivateKey,
    key_id: str,
    body: bytes,
    created: datetime.datetime | None = None,
) -> None:
    """Signs a response: its status, its body's Content-Digest and, when the
    request carried a well-formed `sig` signature, that signature (so the
    answer belongs to its request). An unsigned or garbled request's answer
    covers ("@status" "content-digest") only."""
    signer = _signer()
    created = created or _utc_now()
    prepared = None
    if message.request is not None and message.request.headers.get("Signature"):
        try:
            prepared = signer.prepare(
                message,
                key_id=key_id,
                created=created,
                label=LABEL,
                covered_component_ids=["@status", REQUEST_BINDING],
                body=body,
            )
        except HTTPMessageSignaturesException:
            prepared = None  # no usable `sig` member to bind to
    if prepared is None:
        prepared = signer.prepare(
            message,
            key_id=key_id,
            created=created,
            label=LABEL,
            covered_component_ids=["@status"],
            body=body,
        )
    _headers_write(message, prepared.signature_params, private_key.sign(prepared.signature_base))


def response_verify(
    message: Any,
    *,
    server_keys: dict[str, ed25519.Ed25519PublicKey],
    body: bytes,
    max_age_seconds: int = 300,
    require: Sequence[str] = RESPONSE_COMPONENTS,
) -> str:
    """Terminal side: verifies a response's signature with a known server key,
    requires the status, the body digest and the binding to our own request
    signature to be covered, and checks the body. Returns the key id used."""
    if not message.headers.get("Signature") or not message.headers.get("Signature-Input"):
        raise SignatureError("response_unsigned", "The response carries no signature.")
    try:
        results = _verifier(server_keys, max_age_seconds).verify(
            message,
            max_age=datetime.timedelta(seconds=max_age_seconds),
            require_components=require,
            body=body,
        )
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise SignatureError(
            "response_signature_invalid", f"The response signature does not verify: {exc}"
        ) from exc
    if len(results) != 1 or results[0].label != LABEL or results[0].parameters.get("alg") != ALG:
        raise SignatureError(
            "response_signature_invalid", 'Expected one ed25519 signature labelled "sig".'
        )
    return str(results[0].parameters["keyid"])

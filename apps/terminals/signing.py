"""The wire format of DESIGN.md §5, on top of the `http-message-signatures`
package (RFC 9421) and its Content-Digest (RFC 9530, sha-256). No database
and no Django settings here: the terminal client imports this module too.

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
import hashlib
import re
import secrets
import time
from binascii import a2b_base64, b2a_base64
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

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
from http_message_signatures._url import _URL, parse_url
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.structures import normalize_header_value
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from apps.terminals.crypto import SodiumSigningKey, b64decode_key, ed25519_public_key

LABEL = "sig"
ALG = "ed25519"
REQUEST_BINDING = '"signature";req;key="sig"'
NONCE_MIN, NONCE_MAX = 16, 128
_REQUIRED_PARAMS = {"created", "keyid", "alg", "nonce"}


class SignatureError(Exception):
    """A signature that cannot be accepted; `code` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _utc(timestamp: int | None = None) -> datetime.datetime:
    if timestamp is None:
        return datetime.datetime.now(datetime.UTC)
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC)


def request_components(*, has_idempotency_key: bool, has_body: bool) -> tuple[str, ...]:
    """The covered components a request must list, in this order."""
    return _COMPONENTS[has_idempotency_key, has_body][0]


# (has an Idempotency-Key, has a body) -> the covered components, and their
# inner list as a terminal writes it.
_COMPONENTS = {
    (key, body): (
        components := ("@method", "@target-uri")
        + (("idempotency-key",) if key else ())
        + (("content-digest",) if body else ()),
        " ".join(f'"{c}"' for c in components),
    )
    for key in (False, True)
    for body in (False, True)
}


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
    prepared = HTTPMessageSigner(signature_algorithm=algorithms.ED25519).prepare(
        message,
        key_id=key_id,
        created=created or _utc(),
        nonce=nonce or secrets.token_urlsafe(18),
        label=LABEL,
        # The library appends "content-digest" last when given the body.
        covered_component_ids=list(request_components(has_idempotency_key=has_key, has_body=False)),
        body=body or None,
    )
    _signature_headers_set(
        message, prepared.signature_params, private_key.sign(prepared.signature_base)
    )


def _signature_headers_set(message: Any, signature_params: str, signature: bytes) -> None:
    # The library's prepare() built the signature base; the headers are
    # written here rather than by apply(), which rebuilds the whole base only
    # to check that the message did not change meanwhile (it cannot: nothing
    # runs in between) and would double the cost of signing.
    message.headers["Signature-Input"] = f"{LABEL}={signature_params}"
    message.headers["Signature"] = f"{LABEL}=:{base64.b64encode(signature).decode()}:"


class SignatureInput(NamedTuple):
    """The parsed, well-formed `sig` member of a request's Signature-Input
    (a named tuple: immutable, and built on every signed request for a
    fraction of a frozen dataclass's cost)."""

    components: tuple[str, ...]
    created: int
    key_id: str
    nonce: str
    # What the fast verification path needs, taken from this one parse:
    # the serialized "@signature-params" value and the signature bytes.
    signature_params: str = ""
    signature: bytes = b""
    # The serialized `sig` member of the Signature field: what the
    # response's '"signature";req' component covers.
    signature_member: str = ""


# The exact text a terminal (request_sign, through the library) writes: the
# members in this order, no optional whitespace, an integer without leading
# zeros, strings of characters that need no escaping, an Ed25519 signature.
# For such text the structured-field serialization of the parsed value is
# the text itself, so it is read with one regular expression instead of the
# pure-Python http_sf parser (here 9 µs instead of 52 µs per request). Any
# other text, however valid, goes through http_sf; tests/terminals check on
# generated headers that both give the same result wherever this one gives
# one.
_CANONICAL_INPUT = re.compile(
    r'sig=\((?P<components>"@method" "@target-uri"(?: "idempotency-key")?(?: "content-digest")?)\)'
    r";created=(?P<created>0|[1-9][0-9]{0,14})"
    r';keyid="(?P<keyid>[A-Za-z0-9._~:-]{1,128})"'
    r';alg="ed25519"'
    r';nonce="(?P<nonce>[A-Za-z0-9._~-]{' + f"{NONCE_MIN},{NONCE_MAX}" + '})"'
)
# A 64-byte signature in base64 whose last character carries no stray bits
# (A, Q, g or w before "=="), so the member is exactly what http_sf would
# serialize from the bytes and can be kept as it came.
_CANONICAL_SIGNATURE = re.compile(r"sig=(?P<member>:(?P<signature>[A-Za-z0-9+/]{85}[AQgw]==):)")


def request_signature_input_parse(headers: Any, *, has_body: bool) -> SignatureInput:
    """Checks the shape of a request's signature before any key is looked up:
    one `sig` label, the exact covered components, the required parameters."""
    return signature_fields_parse(
        headers.get("Signature-Input"),
        headers.get("Signature"),
        has_idempotency_key="Idempotency-Key" in headers,
        has_body=has_body,
    )


def signature_fields_parse(
    signature_input: str | None,
    signature: str | None,
    *,
    has_idempotency_key: bool,
    has_body: bool,
) -> SignatureInput:
    """request_signature_input_parse of the two fields' values, for a caller
    that reads them itself (the server, from the WSGI environ)."""
    if not signature_input or not signature:
        raise SignatureError(
            "signature_missing", "The request carries no Signature-Input and Signature."
        )
    return _canonical_parse(
        signature_input, signature, has_idempotency_key=has_idempotency_key, has_body=has_body
    ) or _structured_parse(
        signature_input, signature, has_idempotency_key=has_idempotency_key, has_body=has_body
    )


def _canonical_parse(
    signature_input: str, signature: str, *, has_idempotency_key: bool, has_body: bool
) -> SignatureInput | None:
    """The parse of text in the exact form a terminal writes (see
    _CANONICAL_INPUT), or None for any other text."""
    matched = _CANONICAL_INPUT.fullmatch(signature_input)
    matched_signature = _CANONICAL_SIGNATURE.fullmatch(signature)
    if matched is None or matched_signature is None:
        return None
    components, written = _COMPONENTS[has_idempotency_key, has_body]
    if matched["components"] != written:
        return None  # _structured_parse words the refusal
    return SignatureInput(
        components,
        int(matched["created"]),
        matched["keyid"],
        matched["nonce"],
        signature_input[len(LABEL) + 1 :],
        # The expression admits only well-formed base64: no wrapper needed.
        a2b_base64(matched_signature["signature"]),
        matched_signature["member"],
    )


def _structured_parse(
    signature_input: str, signature: str, *, has_idempotency_key: bool, has_body: bool
) -> SignatureInput:
    """request_signature_input_parse through the http_sf parser: any valid
    structured-field text, and the refusal of everything else."""
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
    expected = request_components(has_idempotency_key=has_idempotency_key, has_body=has_body)
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
    signature, signature_item_params = signatures[LABEL]
    return SignatureInput(
        components=components,
        created=created,
        key_id=key_id,
        nonce=nonce,
        signature_params=_params_serialized(components, params)
        or http_sf.ser({LABEL: inputs[LABEL]})[len(LABEL) + 1 :],
        signature=signature,
        signature_member=f":{base64.b64encode(signature).decode()}:"
        if not signature_item_params
        else http_sf.ser({LABEL: signatures[LABEL]})[len(LABEL) + 1 :],
    )


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _params_serialized(components: Sequence[str], params: dict) -> str | None:
    """What http_sf.ser gives for a `sig` member that passed the checks above
    (plain string components, integer and string parameters), written
    directly: serializing through http_sf cost a signed request more than
    its Ed25519 check. None for any other shape (http_sf then serializes);
    tests/terminals compare the two on generated members."""
    parts = ["(", " ".join(_sf_string(c) for c in components), ")"]
    for key, value in params.items():
        if type(value) is int:
            parts.append(f";{key}={value}")
        elif type(value) is str:
            parts.append(f";{key}={_sf_string(value)}")
        else:
            return None
    return "".join(parts)


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
    first: rotation), then the body against the signed Content-Digest."""
    verified = False
    for public_key in public_keys:
        try:
            _verifier({key_id: public_key}, skew_seconds).verify(
                message, max_age=datetime.timedelta(seconds=skew_seconds), expect_label=None
            )
        except (InvalidSignature, HTTPMessageSignaturesException):
            continue
        verified = True
        break
    if not verified:
        raise SignatureError(
            "signature_invalid", "The signature does not verify with the terminal's key."
        )
    _digest_check(message, body)


def _digest_check(message: Any, body: bytes) -> None:
    """The body against the Content-Digest the signature covered."""
    if not body:
        return
    try:
        ContentDigest.verify(message.headers.get("Content-Digest", ""), body)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise SignatureError(
            "digest_mismatch", "Content-Digest does not match the request body."
        ) from exc


def _component_value(value: str, *, derived: bool) -> str:
    """A component value as the library's signature base takes it, with its
    checks (no CR/LF, printable ASCII); ValueError where it would refuse."""
    if not derived:
        value = normalize_header_value(value)
    if "\r" in value or "\n" in value or not value.isascii():
        raise ValueError("component value not allowed in a signature base")
    if derived:
        if value and (not value.isprintable() or value != value.strip(" ")):
            raise ValueError("derived component value not allowed")
    elif value and not value.replace("\t", " ").isprintable():
        raise ValueError("field value with control characters")
    return value


# Terminals call a handful of URLs again and again, and the URL grammar's
# expression is the dearest step of a request's base: each URL's value is
# worked out once. A refusal raises every time (lru_cache keeps no error).
@lru_cache(maxsize=1024)
def _target_uri(url: str) -> str:
    """The @target-uri value the library derives from an absolute URL, with
    its checks: the URL itself when it has a path and no userinfo, IP
    literal or fragment (what a server builds from its request; the URL
    grammar admits only printable ASCII without spaces, so it passes them),
    else rebuilt from parse_url's parts. HTTPMessageSignaturesException or
    ValueError where the library refuses it."""
    matched = _URL.fullmatch(url)
    if (
        matched is not None
        and matched["path"]
        and "@" not in url[: matched.start("path")]
        and "#" not in url
        and not matched["host"].startswith("[")
    ):
        return url
    parts = parse_url(url)
    return _component_value(
        f"{parts.scheme}://{parts.authority}{parts.path or '/'}{parts.query_suffix}", derived=True
    )


def request_signature_base(message: Any, parsed: SignatureInput) -> bytes:
    """The RFC 9421 signature base of a request whose Signature-Input passed
    request_signature_input_parse (so its components are exactly ours:
    "@method", "@target-uri", then optionally "idempotency-key" and
    "content-digest", none with parameters). Built directly, without the
    library's second parse of both headers; tests/terminals check that it is
    byte for byte the library's base on generated requests, valid and
    tampered. ValueError where the library would refuse the message."""
    # The parse put "@method" and "@target-uri" first, always.
    method = message.method
    base = (
        f'"@method": {method if method in _PLAIN_METHODS else _component_value(method, derived=True)}'
        f'\n"@target-uri": {_target_uri(message.url)}\n'
    )
    for component in parsed.components[2:]:
        raw = message.headers.get(component)
        if raw is None:
            raise ValueError(f"covered field {component} is absent")
        base += f'"{component}": {_component_value(raw, derived=False)}\n'
    return f'{base}"@signature-params": {parsed.signature_params}'.encode("ascii")


# Methods _component_value passes unchanged.
_PLAIN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@lru_cache(maxsize=4096)
def _libsodium_key(public_b64: str) -> bytes:
    # libsodium (PyNaCl) verifies Ed25519 in about 60% of the time OpenSSL
    # (cryptography) takes here; the same RFC 8032 signatures. A public key
    # is no secret: the cache only maps its text to its raw 32 bytes
    # (crypto_sign_open reads 32 bytes of it), decoded and checked once.
    return b64decode_key(public_b64)


def request_verify_parsed(
    message: Any,
    parsed: SignatureInput,
    *,
    public_keys: Sequence[str],
    body: bytes,
    skew_seconds: int,
) -> None:
    """request_verify for a request already parsed by
    request_signature_input_parse, with the terminal's valid keys as stored
    (base64 of the raw 32-byte Ed25519 keys, newest first): the signature
    base is built once and verified with libsodium directly. A signature
    that does not verify this way is handed to the library (the reference)
    before it is refused, so the fast path can only save time, never refuse
    what the library accepts; it accepts only a signature over this
    request's own components."""
    try:
        base = request_signature_base(message, parsed)
    except (ValueError, HTTPMessageSignaturesException):
        base = None
    # An Ed25519 signature is 64 bytes; any other length (only a
    # non-canonical Signature can carry one) goes to the library to refuse.
    if base is not None and len(parsed.signature) == 64:
        for public_key in public_keys:
            # libsodium's own binding: PyNaCl's VerifyKey adds only checks
            # that _libsodium_key and the parse (64 bytes) have made.
            try:
                crypto_sign_open(parsed.signature + base, _libsodium_key(public_key))
            except (BadSignatureError, ValueError, TypeError):
                continue
            _digest_check(message, body)
            return
    request_verify(
        message,
        key_id=parsed.key_id,
        public_keys=[ed25519_public_key(k) for k in public_keys],
        body=body,
        skew_seconds=skew_seconds,
    )


def response_sign(
    message: Any,
    *,
    private_key: ed25519.Ed25519PrivateKey | SodiumSigningKey,
    key_id: str,
    body: bytes,
    request_member: str | None = None,
) -> None:
    """Signs a response. It is bound to the request's `sig` signature when the
    request carried a well-formed one; otherwise (an unsigned or garbled
    request) it covers ("@status" "content-digest") only.

    The base of this fixed shape is written directly rather than through the
    library's prepare() (which resolves every component generically, half
    the cost of signing a response); response_sign_reference is that
    library path, and tests/terminals check that both give the same base and
    that the terminal client (library verification) accepts the result.
    `request_member`: the request's `sig` member when its authentication
    already serialized it (SignatureInput.signature_member), else parsed here."""
    if request_member is None:
        request_member = _request_signature_member(message)
    headers = message.headers
    (
        headers["Content-Digest"],
        headers["Signature-Input"],
        headers["Signature"],
    ) = response_signature_fields(
        message.status_code, body, request_member, private_key=private_key, key_id=key_id
    )


def response_signature_fields(
    status: int,
    body: bytes,
    request_member: str | None,
    *,
    private_key: ed25519.Ed25519PrivateKey | SodiumSigningKey,
    key_id: str,
) -> tuple[str, str, str]:
    """(Content-Digest, Signature-Input, Signature) of a response: what
    response_sign writes, for a caller that sets the fields itself."""
    digest = content_digest(body)
    if request_member:
        components = f'"@status" {REQUEST_BINDING} "content-digest"'
        bound = f"{REQUEST_BINDING}: {request_member}\n"
    else:
        components, bound = '"@status" "content-digest"', ""
    params = f'({components});created={int(time.time())};keyid="{key_id}";alg="{ALG}"'
    base = (
        f'"@status": {int(status)}\n{bound}"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    ).encode("ascii")
    signature = private_key.sign(base)
    return digest, f"{LABEL}={params}", f"{LABEL}=:{b2a_base64(signature, newline=False).decode()}:"


def content_digest(body: bytes) -> str:
    """The Content-Digest field of `body` (RFC 9530, sha-256), as
    ContentDigest.create writes it, without its structured-field round trip;
    tests/terminals compare the two."""
    # binascii, as base64.b64encode calls it, without its Python wrapper.
    return f"sha-256=:{b2a_base64(hashlib.sha256(body).digest(), newline=False).decode()}:"


def _request_signature_member(message: Any) -> str | None:
    """request_signature_member of the request a response message answers."""
    return request_signature_member(
        message.request.headers.get("Signature") if message.request is not None else None
    )


def request_signature_member(signature: str | None) -> str | None:
    """The serialized `sig` member of a request's Signature field (what a
    '"signature";req;key="sig"' component covers), or None when there is no
    well-formed one."""
    if not signature:
        return None
    try:
        parsed = http_sf.parse(normalize_header_value(signature).encode(), tltype="dictionary")
        if LABEL in parsed and isinstance(parsed[LABEL][0], bytes):
            member = http_sf.ser({LABEL: parsed[LABEL]})[len(LABEL) + 1 :]
            return member if member.isascii() and member.isprintable() else None
    except (ValueError, TypeError, UnicodeEncodeError):
        pass
    return None


def response_sign_reference(
    message: Any,
    *,
    private_key: ed25519.Ed25519PrivateKey,
    key_id: str,
    body: bytes,
    created: datetime.datetime | None = None,
) -> bytes:
    """response_sign through the library's prepare(): the reference the
    fast path is tested against. Returns the signature base it signed."""
    components = ["@status"]
    if _request_signature_member(message):
        components.append(REQUEST_BINDING)
    prepared = HTTPMessageSigner(signature_algorithm=algorithms.ED25519).prepare(
        message,
        key_id=key_id,
        created=created or _utc(),
        label=LABEL,
        covered_component_ids=components,
        body=body,
    )
    _signature_headers_set(
        message, prepared.signature_params, private_key.sign(prepared.signature_base)
    )
    return prepared.signature_base


RESPONSE_COMPONENTS = ("@status", REQUEST_BINDING, "content-digest")


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

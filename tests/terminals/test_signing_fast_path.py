"""The server's fast signing paths (apps/terminals/signing.py) against the
`http-message-signatures` library, which stays the reference: the request
signature base built directly must be the library's, byte for byte, and
verify exactly when the library verifies; the response signature written
directly must be the library's and verify with the client's (library) check.
And the per-process copy of a terminal's auth state never outlives a change."""

from __future__ import annotations

import base64
import datetime
import json
import random

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.http import HttpResponse
from django.test import RequestFactory
from http_message_signatures import HTTPMessageSigner, InvalidSignature, algorithms

from apps.terminals.api.messages import DjangoRequestMessage, DjangoResponseMessage
from apps.terminals.crypto import SodiumSigningKey
from apps.terminals.signing import (
    LABEL,
    SignatureError,
    content_digest,
    request_components,
    request_sign,
    request_signature_base,
    request_signature_input_parse,
    request_verify,
    request_verify_parsed,
    response_sign,
    response_sign_reference,
    response_verify,
)

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = ed25519.Ed25519PrivateKey.generate()
SODIUM_KEY = SodiumSigningKey(KEY.private_bytes_raw())
KEY_B64 = base64.b64encode(KEY.public_key().public_bytes_raw()).decode()
OTHER_KEY_B64 = base64.b64encode(OTHER_KEY.public_key().public_bytes_raw()).decode()
KEY_ID = "5b0c1f0e-2d7e-4c8e-9a43-0f6f9d1d2a11"
PATHS = ["/api/v1/terminal/ping", "/api/v1/terminal/payments", "/api/v1/terminal/p%C3%A9/x"]
QUERIES = ["", "?a=1", "?a=1&b=%20x", "?q=%E4%BD%A0"]


def _generated(rng: random.Random) -> tuple[object, bytes, bytes]:
    """A request signed by the library like a terminal signs it, as the
    Django request the server sees; returns (request, body, library base)."""
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    path = rng.choice(PATHS) + rng.choice(QUERIES)
    host = rng.choice(["127.0.0.1", "testserver", "pos.example.com"])
    body = (
        json.dumps({"amount": rng.randint(1, 10**9), "note": "x" * rng.randint(0, 40)}).encode()
        if method != "GET" and rng.random() < 0.8
        else b""
    )
    headers = {}
    if rng.random() < 0.5:
        headers["Idempotency-Key"] = rng.choice(["k-1", "spaced  ", "a" * 64, "x\ty"])
    prepared = requests.Request(
        method, f"http://{host}{path}", data=body or None, headers=headers
    ).prepare()
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=rng.randint(0, 200))
    nonce = base64.urlsafe_b64encode(rng.randbytes(18)).decode()
    library = HTTPMessageSigner(signature_algorithm=algorithms.ED25519).prepare(
        requests.Request(method, f"http://{host}{path}", headers=dict(headers)).prepare(),
        key_id=KEY_ID,
        created=created,
        nonce=nonce,
        label=LABEL,
        covered_component_ids=request_components(has_idempotency_key=bool(headers), has_body=False),
        body=body or None,
    )
    request_sign(
        prepared, private_key=KEY, key_id=KEY_ID, body=body or None, created=created, nonce=nonce
    )
    meta = {
        f"HTTP_{k.upper().replace('-', '_')}": v
        for k, v in prepared.headers.items()
        if k.lower() not in ("content-type", "content-length")
    }
    django_request = RequestFactory().generic(
        method, path, data=body, content_type="application/json", SERVER_NAME=host, **meta
    )
    return django_request, body, library.signature_base


def _library_accepts(django_request, body: bytes) -> bool:
    """The reference: our policy on the shape of Signature-Input, then the
    library's own verification."""
    try:
        request_signature_input_parse(django_request.headers, has_body=bool(body))
        request_verify(
            DjangoRequestMessage(django_request),
            key_id=KEY_ID,
            public_keys=[KEY.public_key()],
            body=body,
            skew_seconds=300,
        )
    except SignatureError:
        return False
    return True


def _fast_accepts(django_request, body: bytes) -> bool:
    try:
        parsed = request_signature_input_parse(django_request.headers, has_body=bool(body))
        base = request_signature_base(DjangoRequestMessage(django_request), parsed)
        KEY.public_key().verify(parsed.signature, base)
    except Exception:
        return False
    return True


def _tampered(rng: random.Random, django_request, body: bytes):
    meta = dict(django_request.META)
    choice = rng.randrange(6)
    if choice == 0:
        meta["REQUEST_METHOD"] = "PATCH"
    elif choice == 1:
        meta["PATH_INFO"] = meta["PATH_INFO"] + "x"
    elif choice == 2:
        meta["QUERY_STRING"] = meta.get("QUERY_STRING", "") + "&z=1"
    elif choice == 3:
        meta["HTTP_IDEMPOTENCY_KEY"] = "another-key"
    elif choice == 4:
        meta["HTTP_HOST"] = "evil.example.com"
    else:
        meta["HTTP_SIGNATURE_INPUT"] = meta["HTTP_SIGNATURE_INPUT"].replace("created=", "created=1")
    tampered = RequestFactory().generic(
        meta["REQUEST_METHOD"], meta["PATH_INFO"], data=body, content_type="application/json"
    )
    tampered.META.update({k: v for k, v in meta.items() if k.startswith(("HTTP_", "SERVER_"))})
    tampered.META["QUERY_STRING"] = meta.get("QUERY_STRING", "")
    return tampered


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_request_base_is_the_librarys_and_verifies_exactly_when_the_library_does(
    seed, settings
):
    settings.ALLOWED_HOSTS = ["*"]
    rng = random.Random(seed)
    for _ in range(60):
        django_request, body, library_base = _generated(rng)
        parsed = request_signature_input_parse(django_request.headers, has_body=bool(body))
        assert request_signature_base(DjangoRequestMessage(django_request), parsed) == library_base
        assert _fast_accepts(django_request, body)
        assert _library_accepts(django_request, body)
        tampered = _tampered(rng, django_request, body)
        assert _fast_accepts(tampered, body) == _library_accepts(tampered, body)
        assert not _fast_accepts(tampered, body)


def test_the_fast_verification_refuses_another_key_and_a_changed_body(settings):
    settings.ALLOWED_HOSTS = ["*"]
    django_request, body, _base = _generated(random.Random(99))
    while not body:
        django_request, body, _base = _generated(random.Random(len(body) + 100))
    parsed = request_signature_input_parse(django_request.headers, has_body=True)
    message = DjangoRequestMessage(django_request)
    request_verify_parsed(message, parsed, public_keys=[KEY_B64], body=body, skew_seconds=300)
    with pytest.raises(SignatureError) as other_key:
        request_verify_parsed(
            message, parsed, public_keys=[OTHER_KEY_B64], body=body, skew_seconds=300
        )
    assert other_key.value.code == "signature_invalid"
    with pytest.raises(SignatureError) as changed:
        request_verify_parsed(
            message, parsed, public_keys=[KEY_B64], body=body + b" ", skew_seconds=300
        )
    assert changed.value.code == "digest_mismatch"


@pytest.mark.parametrize(
    "request_signature",
    [None, "sig=:AAAA:", "sig=:AAAA:;x=1, other=:BBBB:", "garbled(", "sig=1", "other=:AAAA:"],
)
@pytest.mark.parametrize("status", [200, 401, 404, 429])
def test_the_fast_response_signature_is_the_librarys_and_the_client_accepts_it(
    request_signature, status
):
    extra = {"HTTP_SIGNATURE": request_signature} if request_signature else {}
    django_request = RequestFactory().get("/api/v1/terminal/ping", **extra)
    body = json.dumps({"status": status}).encode()

    def message():
        response = HttpResponse(body, status=status, content_type="application/json")
        return response, DjangoResponseMessage(
            response, DjangoRequestMessage(django_request, with_url=False)
        )

    fast, fast_message = message()
    # The server signs with libsodium (SERVER_KEY.sodium_key); the library
    # reference with OpenSSL: Ed25519 is deterministic, so the same bytes.
    response_sign(fast_message, private_key=SODIUM_KEY, key_id="srv-1", body=body)
    reference, reference_message = message()
    created = int(fast["Signature-Input"].split("created=")[1].split(";")[0])
    response_sign_reference(
        reference_message,
        private_key=KEY,
        key_id="srv-1",
        body=body,
        created=datetime.datetime.fromtimestamp(created, datetime.UTC),
    )
    for header in ("Signature-Input", "Signature", "Content-Digest"):
        assert fast[header] == reference[header]  # Ed25519 is deterministic
    bound = request_signature is not None and request_signature.startswith("sig=:")
    require = ("@status", "content-digest") + (('"signature";req;key="sig"',) if bound else ())
    assert (
        response_verify(
            fast_message, server_keys={"srv-1": KEY.public_key()}, body=body, require=require
        )
        == "srv-1"
    )
    with pytest.raises(SignatureError):
        response_verify(
            fast_message, server_keys={"srv-1": KEY.public_key()}, body=body + b"x", require=require
        )


def test_the_signing_middleware_sets_its_fields_as_django_would():
    """The three fields go into Django's header store directly: they read back
    under any case, replace a field of the same name set by the view, appear
    once each in what the server sends, and verify."""
    from apps.terminals.crypto import server_signing_keys
    from apps.terminals.middleware import response_sign_django

    signature = "sig=:" + base64.b64encode(bytes(64)).decode() + ":"
    django_request = RequestFactory().get("/api/v1/terminal/ping", HTTP_SIGNATURE=signature)
    body = b'{"ok":true}'
    response = HttpResponse(body, content_type="application/json")
    response["content-digest"] = "sha-256=:set-by-the-view:"
    response_sign_django(django_request, response)

    assert response["Content-Digest"] == response.headers["content-digest"] == content_digest(body)
    assert response.headers["SIGNATURE-INPUT"].startswith('sig=("@status" "signature";req')
    assert "signature" in response.headers
    fields = {"content-digest", "signature-input", "signature"}
    sent = sorted(name for name, _value in response.items() if name.lower() in fields)
    assert sent == ["Content-Digest", "Signature", "Signature-Input"]
    key = server_signing_keys()[0]
    message = DjangoResponseMessage(response, DjangoRequestMessage(django_request, with_url=False))
    assert (
        response_verify(
            message,
            server_keys={key.key_id: key.private_key.public_key()},
            body=body,
            require=("@status", "content-digest", '"signature";req;key="sig"'),
        )
        == key.key_id
    )


def test_the_library_itself_refuses_a_fast_response_signed_with_another_key():
    django_request = RequestFactory().get("/api/v1/terminal/ping", HTTP_SIGNATURE="sig=:AAAA:")
    response = HttpResponse(b"{}", content_type="application/json")
    message = DjangoResponseMessage(response, DjangoRequestMessage(django_request, with_url=False))
    response_sign(message, private_key=OTHER_KEY, key_id="srv-1", body=b"{}")
    with pytest.raises((SignatureError, InvalidSignature)):
        response_verify(message, server_keys={"srv-1": KEY.public_key()}, body=b"{}")


# --- the per-process copy of a terminal's auth state (Redis only) ------------


def _warm_local_copy(pos, terminal) -> str:
    """Clears activation's tombstone, then signs until this process holds
    the terminal's auth state; returns its key there (the terminal id)."""
    from django.core.cache import cache

    from apps.terminals import selectors

    cache.delete(f"terminal-auth:{terminal.public_id}")
    for _ in range(3):
        assert pos.get("/api/v1/terminal/ping").status_code == 200
    key = str(terminal.public_id)
    assert selectors._LOCAL_AUTH[key][0] == cache.make_key(f"terminal-auth:{key}")
    return key


@pytest.mark.redis
def test_a_terminal_held_in_process_memory_is_refused_the_moment_it_is_suspended(
    pos, terminal, owner
):
    from apps.terminals.services import terminal_suspend
    from tests.terminals.conftest import error_code

    _warm_local_copy(pos, terminal)
    terminal_suspend(terminal=terminal, actor=owner, reason="stolen")
    response = pos.get("/api/v1/terminal/ping")
    assert (response.status_code, error_code(response)) == (403, "terminal_inactive")


@pytest.mark.redis
def test_a_key_revoked_while_held_in_process_memory_is_refused_on_the_next_request(pos, terminal):
    from django.utils import timezone

    from apps.terminals.models import TerminalKey
    from apps.terminals.selectors import terminal_auth_cache_forget
    from tests.terminals.conftest import error_code

    _warm_local_copy(pos, terminal)
    TerminalKey.objects.filter(terminal=terminal).update(expires_at=timezone.now())
    terminal_auth_cache_forget(terminal.public_id)
    response = pos.get("/api/v1/terminal/ping")
    assert (response.status_code, error_code(response)) == (401, "signature_unknown_key")


@pytest.mark.redis
def test_a_previous_key_held_in_process_memory_stops_working_when_its_grace_period_ends(
    pos, terminal, settings
):
    """Nothing tells a process that a grace period has ended: its copy goes
    by the keys' own expiry."""
    import time

    from django.core.cache import cache

    from apps.terminals import selectors
    from apps.terminals.models import TerminalKey
    from tests.terminals.conftest import error_code, send, signed_request

    settings.TERMINAL_KEY_GRACE_SECONDS = 2
    old_private = pos.private_key
    pos.rotate_key()
    cache.delete(f"terminal-auth:{terminal.public_id}")  # the rotation's tombstone

    def old_key_ping():
        return send(
            pos, signed_request(pos, "GET", "/api/v1/terminal/ping", private_key=old_private)
        )

    for _ in range(2):
        assert old_key_ping().status_code == 200
    assert str(terminal.public_id) in selectors._LOCAL_AUTH
    grace_end = TerminalKey.objects.get(terminal=terminal, expires_at__isnull=False).expires_at
    time.sleep(max(0.0, grace_end.timestamp() - time.time()) + 0.2)

    response = old_key_ping()
    assert (response.status_code, error_code(response)) == (401, "signature_invalid")
    assert pos.get("/api/v1/terminal/ping").status_code == 200


@pytest.mark.redis
def test_a_terminal_held_in_process_memory_is_checked_again_when_redis_forgot_it(pos, terminal):
    from django.core.cache import cache

    from apps.terminals import selectors

    key = _warm_local_copy(pos, terminal)
    cache.delete(f"terminal-auth:{terminal.public_id}")  # expired in Redis
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    # Reloaded from the database and cached again (the bytes may be equal).
    assert cache.get(f"terminal-auth:{terminal.public_id}") is not None
    assert selectors._LOCAL_AUTH.get(key) is not None


@pytest.mark.redis
def test_a_request_signed_with_a_key_newer_than_the_process_copy_is_accepted(pos, terminal):
    from django.core.cache import cache

    from apps.audit.models import SecurityEvent
    from apps.terminals import selectors

    key = _warm_local_copy(pos, terminal)
    before = selectors._LOCAL_AUTH[key]
    pos.rotate_key()  # its tombstone expires: only this process's copy is stale
    cache.delete(f"terminal-auth:{terminal.public_id}")
    selectors._LOCAL_AUTH[key] = before

    assert pos.get("/api/v1/terminal/ping").status_code == 200
    assert not SecurityEvent.objects.filter(data__terminal_id=str(terminal.public_id)).exists()


@pytest.mark.redis
def test_saving_a_shop_makes_its_terminals_load_it_afresh(pos, terminal):
    """The cached auth state carries the terminal's shop (place and hours,
    which the risk rules compare with): an edited shop is seen at once."""
    from apps.terminals.selectors import terminal_auth_find

    _warm_local_copy(pos, terminal)
    assert terminal_auth_find(key_id=str(terminal.public_id)).stamp is not None
    shop = terminal.shop
    shop.latitude = "39.904200"
    shop.save()
    found = terminal_auth_find(key_id=str(terminal.public_id))
    assert float(found.terminal.shop.latitude) == 39.9042
    assert pos.get("/api/v1/terminal/ping").status_code == 200


@pytest.mark.parametrize(
    "member",
    [
        '("@method" "@target-uri");created=1700000000;keyid="k-1";alg="ed25519";nonce="n"',
        '("@method" "@target-uri" "content-digest");nonce="a\\\\b\\"c";alg="ed25519";'
        'keyid="x";created=5',
        '("@method");created=1;keyid=tok;alg="ed25519";nonce="n"',  # a token
        '("@method");created=1;keyid="k";alg="ed25519";nonce=?1',  # a boolean
        '("@method");created=1.5;keyid="k";alg="ed25519";nonce="n"',  # a decimal
    ],
)
def test_the_direct_serialization_of_signature_params_is_http_sfs(member):
    """Written directly for the shapes the checks admit, and left to http_sf
    (None) for any other; never different from http_sf's."""
    import http_sf

    from apps.terminals.signing import _params_serialized

    components, params = http_sf.parse(f"sig={member}".encode(), tltype="dictionary")[LABEL]
    direct = _params_serialized([c for c, _p in components], params)
    reference = http_sf.ser({LABEL: (components, params)})[len(LABEL) + 1 :]
    assert direct is None or direct == reference
    assert (direct is None) == any(type(v) not in (int, str) for v in params.values())


@pytest.mark.parametrize("signature", ["sig=:AAEC:", "sig=:AAEC:;x=1", "sig=:YWJjZA==:"])
def test_the_parsed_signature_member_is_what_the_response_binds_to(signature):
    """The request's authentication hands the response signature the `sig`
    member it parsed; it is the member the response would otherwise parse."""
    from apps.terminals.signing import _request_signature_member

    prepared = requests.Request("GET", "http://127.0.0.1/api/v1/terminal/ping").prepare()
    request_sign(prepared, private_key=KEY, key_id=KEY_ID, body=None)
    headers = {**prepared.headers, "Signature": signature}
    parsed = request_signature_input_parse(headers, has_body=False)
    django_request = RequestFactory().get("/api/v1/terminal/ping", HTTP_SIGNATURE=signature)
    response = DjangoResponseMessage(
        HttpResponse(b"{}"), DjangoRequestMessage(django_request, with_url=False)
    )
    assert parsed.signature_member == _request_signature_member(response)


# --- the canonical Signature-Input read (one regular expression) -------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SAFE = "ABCXYZabcxyz0189._~:-"
# Characters that change a string's structured-field meaning or spelling.
_RISKY = ['"', "\\", " ", "\t", "\x7f", "\u4f60", ",", ";", "=", "(", ")", "/", "+", ":", "%"]
_CHANGES = [
    *(f"{kind}-{what}" for kind in ("keyid", "nonce") for what in ("length", "character", "form")),
    *("components", "created", "alg", "order", "missing", "separator", "extra", "space"),
    *("signature-length", "signature-bits", "padding", "signature-form"),
]
_COMPONENT_LISTS = [
    '"@method" "@target-uri"',
    '"@method" "@target-uri" "content-digest"',
    '"@method" "@target-uri" "idempotency-key"',
    '"@method" "@target-uri" "idempotency-key" "content-digest"',
]
_ODD_COMPONENT_LISTS = [
    '"@method" "@target-uri" "content-digest" "idempotency-key"',
    '"@target-uri" "@method"',
    '"@method"  "@target-uri"',
    '"@method" "@target-uri";x=1',
    "",
]


def _signature_inputs():
    """Signature-Input and Signature as a terminal writes them, then none,
    one or a few small changes (each a valid or an invalid spelling), so
    that the canonical expression is tried near both sides of its edge."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        # A third exactly as a terminal writes, a third with exactly one
        # change (so each change is tried alone), a third with several.
        mode = draw(st.sampled_from(["clean", "one", "several"]))
        only = draw(st.sampled_from(_CHANGES)) if mode == "one" else None

        def changed(kind, one_in):
            if mode == "several":
                return draw(st.integers(1, one_in)) == 1
            return kind == only

        def text(kind, alphabet, min_size, max_size):
            if changed(f"{kind}-length", 8):  # a length just outside the limits
                min_size, max_size = draw(st.sampled_from([(0, 0), (max_size + 1, max_size + 2)]))
            value = draw(st.text(alphabet=alphabet, min_size=min_size, max_size=max_size))
            if changed(f"{kind}-character", 4):  # one risky character: first, last, anywhere
                at = draw(st.sampled_from([0, len(value), draw(st.integers(0, len(value)))]))
                value = value[:at] + draw(st.sampled_from(_RISKY)) + value[at:]
            return value

        def string(kind, value):
            if changed(f"{kind}-form", 6):
                return f'"{value}"' if draw(st.booleans()) else value  # unescaped, or a token
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        def one_of(kind, usual, odd):
            return draw(st.sampled_from(odd)) if changed(kind, 8) else usual

        has_key, has_body = draw(st.booleans()), draw(st.booleans())
        components = " ".join(
            f'"{c}"' for c in request_components(has_idempotency_key=has_key, has_body=has_body)
        )
        if changed("components", 8):
            components = draw(st.sampled_from(_COMPONENT_LISTS + _ODD_COMPONENT_LISTS))
        params = {
            "created": one_of(
                "created",
                str(draw(st.integers(0, 10**15 - 1))),
                ["0", "00", "0012", "-5", "1.5", "9" * 16, '"17"'],
            ),
            "keyid": string("keyid", text("keyid", _SAFE, 1, 128)),
            "alg": one_of("alg", '"ed25519"', ['"ED25519"', "ed25519", '"rsa"']),
            "nonce": string("nonce", text("nonce", _SAFE.replace(":", ""), 16, 128)),
        }
        order = list(params)
        if changed("order", 6):
            order = draw(st.permutations(order))
        if changed("missing", 8):
            del order[draw(st.integers(0, 3))]
        separator = one_of("separator", ";", ["; "])
        members = "".join(f"{separator}{k}={params[k]}" for k in order)
        extra = one_of("extra", "", [";tag=x", ", other=()", ","])
        space = one_of("space", "", [" ", "\t"])
        signature_input = f"{space}sig=({components}){members}{extra}{space}"
        length = one_of("signature-length", 86, [85, 87, 43])
        b64 = "".join(
            draw(st.lists(st.sampled_from(_B64), min_size=length - 1, max_size=length - 1))
        )
        # An encoder leaves the bits after the last byte zero: A, Q, g or w.
        b64 += draw(st.sampled_from(_B64 if changed("signature-bits", 6) else "AQgw"))
        padding = one_of("padding", "==", ["=", "", "==="])
        signature = one_of("signature-form", "sig=:{}:", ["sig=:{}:;x=1", " sig=:{}:"])
        return signature_input, signature.format(b64 + padding), has_key, has_body

    return build()


def _parse_or_code(parse, signature_input, signature, headers, has_body):
    try:
        return parse(
            signature_input,
            signature,
            has_idempotency_key="Idempotency-Key" in headers,
            has_body=has_body,
        )
    except SignatureError as exc:
        return exc.code


def test_the_canonical_read_gives_what_http_sf_gives_wherever_it_gives_anything():
    """The regular expression reads only text whose http_sf parse it
    reproduces exactly (components, created, keyid, nonce, the serialized
    parameters the signature base covers, the signature bytes and member);
    any other text, valid or not, is left to http_sf."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from apps.terminals.signing import _canonical_parse, _structured_parse

    read = {"fast": 0, "slow": 0}

    @settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_signature_inputs(), st.integers(0, 9))
    def check(generated, flip):
        signature_input, signature, has_key, has_body = generated
        if flip == 0:  # a request whose own shape disagrees with its signature
            has_body = not has_body
        headers = {"Idempotency-Key": "k"} if has_key else {}
        fast = _parse_or_code(_canonical_parse, signature_input, signature, headers, has_body)
        read["slow" if fast is None else "fast"] += 1
        if fast is not None:
            assert fast == _parse_or_code(
                _structured_parse, signature_input, signature, headers, has_body
            )

    check()
    # Both sides of the edge were tried, not only one.
    assert read["fast"] > 300, read
    assert read["slow"] > 300, read


@pytest.mark.parametrize("seed", range(3))
def test_what_a_terminal_signs_is_always_read_by_the_canonical_expression(seed):
    """Every request the terminal client signs (the library's output) takes
    the fast read; were the library to change its spelling, this fails
    rather than the server silently paying for the slow parse."""
    from apps.terminals.signing import _canonical_parse

    rng = random.Random(seed)
    for _ in range(50):
        django_request, body, _base = _generated(rng)
        headers = django_request.headers
        assert _canonical_parse(
            headers["Signature-Input"],
            headers["Signature"],
            has_idempotency_key="Idempotency-Key" in headers,
            has_body=bool(body),
        ) == request_signature_input_parse(headers, has_body=bool(body))


@pytest.mark.parametrize("size", [0, 1, 2, 3, 64, 1000])
def test_the_direct_content_digest_is_the_librarys(size):
    from http_message_signatures import ContentDigest

    from apps.terminals.signing import content_digest

    body = random.Random(size).randbytes(size)
    assert content_digest(body) == ContentDigest.create(body)


@pytest.mark.redis
def test_each_request_gets_its_own_copy_of_the_terminal_held_in_process_memory(pos, terminal):
    """A request that changes its terminal object (or its merchant or shop)
    changes nothing for the next request in the same process."""
    from apps.terminals.selectors import terminal_auth_local

    _warm_local_copy(pos, terminal)
    first = terminal_auth_local(key_id=str(terminal.public_id))
    assert first.local
    first.terminal.status = "retired"
    first.terminal.merchant.name = "changed"
    first.terminal.shop.latitude = "0"
    second = terminal_auth_local(key_id=str(terminal.public_id))
    assert second.local
    assert second.terminal is not first.terminal
    assert second.terminal.merchant is not first.terminal.merchant
    assert (second.terminal.status, second.terminal.merchant.name) == (
        terminal.status,
        terminal.merchant.name,
    )
    assert float(second.terminal.shop.latitude) == float(terminal.shop.latitude)
    assert second.terminal.pk == terminal.pk
    assert second.terminal._state.db == "default"
    assert pos.get("/api/v1/terminal/ping").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/api/v1/terminal/ping",
        "https://pos.example.com:8443/api/v1/terminal/payments?a=1&b=%20x",
        "http://h/p?",  # an empty query
        "http://h:/p",  # an empty port
        "http://h",  # no path
        "http://h?x=/y",  # a query but no path
        "http://user:pw@h/p",  # userinfo, dropped
        "http://h/p@q?r@s",  # @ after the authority
        "http://h/p#frag",  # a fragment, dropped
        "http://h/p?q#frag",
        "http://[::1]:8000/p",
        "http://[v1.x]/p",
        "http://[zz::1]/p",  # not an IPv6 address
        "http://h/p q",  # not encoded
        "/relative",
        "http://h/%E4%BD%A0",
    ],
)
def test_the_target_uri_is_the_value_the_library_derives(url):
    from http_message_signatures._url import parse_url
    from http_message_signatures.exceptions import HTTPMessageSignaturesException

    from apps.terminals.signing import _target_uri

    # Twice: the second answer is the remembered one, and a refusal is
    # never remembered.
    try:
        parts = parse_url(url)
    except HTTPMessageSignaturesException:
        for _ in range(2):
            with pytest.raises(HTTPMessageSignaturesException):
                _target_uri(url)
        return
    expected = f"{parts.scheme}://{parts.authority}{parts.path or '/'}{parts.query_suffix}"
    assert [_target_uri(url), _target_uri(url)] == [expected, expected]


# --- the request's @target-uri ------------------------------------------------

_URL_CHARS = "aZ09/:@&+$,-_.!~*'()#%[]=;?^ é你\\\"<>{}|`"


@pytest.mark.parametrize("seed", range(3))
def test_the_request_url_is_django_scheme_host_and_full_path(seed, settings):
    from django.core.handlers.wsgi import WSGIRequest
    from django.test import RequestFactory

    from apps.terminals.api.messages import request_url

    settings.ALLOWED_HOSTS = ["127.0.0.1", "pos.example.com", "[::1]"]
    rng = random.Random(seed)
    for _ in range(300):
        path = "/" + "".join(rng.choice(_URL_CHARS) for _ in range(rng.randint(0, 12)))
        query = "".join(rng.choice(_URL_CHARS) for _ in range(rng.choice([0, 0, 3, 10])))
        meta = {"SERVER_NAME": rng.choice(["127.0.0.1", "pos.example.com"])}
        meta["SERVER_PORT"] = rng.choice(["80", "443", "8443"])
        if rng.random() < 0.7:
            meta["HTTP_HOST"] = rng.choice(["127.0.0.1", "pos.example.com:8443", "[::1]:8000"])
        if rng.random() < 0.5:
            meta["HTTP_X_FORWARDED_PROTO"] = rng.choice(["https", "http", "https, http"])
        # As a WSGI server hands them over: the raw bytes read as latin-1.
        request = WSGIRequest(
            RequestFactory()._base_environ(
                PATH_INFO=path.encode().decode("latin-1"),
                QUERY_STRING=query.encode().decode("latin-1"),
                **meta,
            )
        )
        expected = f"{request.scheme}://{request.get_host()}{request.get_full_path()}"
        assert request_url(request) == expected
        assert request_url(request) == expected  # remembered, the same


def test_the_request_url_refuses_a_host_every_time_and_follows_allowed_hosts(settings):
    from django.core.exceptions import DisallowedHost
    from django.test import RequestFactory

    from apps.terminals.api.messages import request_url

    settings.ALLOWED_HOSTS = ["pos.example.com"]
    evil = RequestFactory().get("/api/v1/terminal/ping", HTTP_HOST="evil.example.com")
    good = RequestFactory().get("/api/v1/terminal/ping", HTTP_HOST="pos.example.com")
    assert request_url(good) == "http://pos.example.com/api/v1/terminal/ping"
    for _ in range(2):
        with pytest.raises(DisallowedHost):
            request_url(evil)
    settings.ALLOWED_HOSTS = ["evil.example.com"]
    assert request_url(evil) == "http://evil.example.com/api/v1/terminal/ping"
    with pytest.raises(DisallowedHost):
        request_url(good)  # no longer allowed: what was remembered is forgotten
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_TLS", "on")
    secure = RequestFactory().get("/p", HTTP_HOST="evil.example.com", HTTP_X_TLS="on")
    assert request_url(secure) == "https://evil.example.com/p"


@pytest.mark.redis
@pytest.mark.parametrize("source", ["database", "redis"])
def test_a_lookup_that_fills_the_process_copy_hands_the_request_its_own(terminal, source):
    """The state a lookup keeps for the process is not the object the
    request gets, whether it came from the database or from Redis."""
    from django.core.cache import cache

    from apps.terminals import selectors
    from apps.terminals.selectors import terminal_auth_find, terminal_auth_local

    key = str(terminal.public_id)
    cache.delete(f"terminal-auth:{key}")
    selectors.terminal_auth_local_forget(key)
    if source == "redis":
        terminal_auth_find(key_id=key)  # fills Redis
        selectors.terminal_auth_local_forget(key)
    found = terminal_auth_find(key_id=key)
    assert found.stamp is not None  # Redis holds it, and so does the process
    found.terminal.status = "retired"
    found.terminal.merchant.name = "changed"
    held = terminal_auth_local(key_id=key)
    assert held.stamp == found.stamp
    assert (held.terminal.status, held.terminal.merchant.name) == (
        terminal.status,
        terminal.merchant.name,
    )

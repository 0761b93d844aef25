"""Signs every response under /api/v1/terminal/ with the server's current
Ed25519 key: answers, errors, 404s, 429s and authentication failures alike,
so a terminal can trust (and tie to its request) whatever it receives."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.ratelimit import TERMINAL_API_PREFIX
from apps.terminals.crypto import server_signing_keys
from apps.terminals.signing import request_signature_member, response_signature_fields

logger = logging.getLogger(__name__)


class TerminalResponseSigningMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(
            TERMINAL_API_PREFIX
        ) or request.path == TERMINAL_API_PREFIX.rstrip("/"):
            response_sign_django(request, response)
        return response


def response_sign_django(request: HttpRequest, response: HttpResponse) -> None:
    if response.streaming:
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        response.streaming_content = [body]  # type: ignore[attr-defined]
    else:
        body = response.content
    # Set by the request's authentication when its Signature parsed; else
    # the request's Signature field is parsed here (an unsigned endpoint,
    # a request refused before authentication).
    request_member = getattr(request, "terminal_signature_member", None)
    if request_member is None:
        request_member = request_signature_member(request.headers.get("Signature"))
    key = server_signing_keys()[0]
    digest, signature_input, signature = response_signature_fields(
        response.status_code, body, request_member, private_key=key.sodium_key, key_id=key.key_id
    )
    # Into Django's header store directly: ResponseHeaders.__setitem__
    # encodes each name and value and scans it for CR/LF (for these three,
    # 30k of the 270k instructions a signed request then cost beyond Ed25519
    # itself, by callgrind), and these values can hold neither (base64,
    # digits, fixed tokens and the server's own key id).
    # tests/terminals check that they read back as headers set the usual way.
    store = response.headers._store  # type: ignore[attr-defined]
    store["content-digest"] = ("Content-Digest", digest)
    store["signature-input"] = ("Signature-Input", signature_input)
    store["signature"] = ("Signature", signature)

"""Signs every response under /api/v1/terminal/ with the server's current
Ed25519 key: answers, errors, 404s, 429s and authentication failures alike,
so a terminal can trust (and tie to its request) whatever it receives."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.ratelimit import TERMINAL_API_PREFIX
from apps.terminals.api.messages import DjangoRequestMessage, DjangoResponseMessage
from apps.terminals.crypto import server_signing_keys
from apps.terminals.signing import response_sign


class TerminalResponseSigningMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(TERMINAL_API_PREFIX) or request.path == TERMINAL_API_PREFIX[:-1]:
            terminal_response_sign(request, response)
        return response


def terminal_response_sign(request: HttpRequest, response: HttpResponse) -> None:
    if response.streaming:
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        response.streaming_content = [body]  # type: ignore[attr-defined]
    else:
        body = response.content
    key = server_signing_keys()[0]
    response_sign(
        DjangoResponseMessage(response, DjangoRequestMessage(request, with_url=False)),
        private_key=key.private_key,
        key_id=key.key_id,
        body=body,
    )

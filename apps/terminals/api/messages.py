"""Django requests and responses seen as the message objects the
`http-message-signatures` package reads (method, url, headers; status_code,
headers, request)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

# The response signature binds only the request's Signature field; the URL
# of the request it answers is not covered, so a fixed one stands in (the
# library still wants a well-formed absolute URL).
_UNCOVERED_URL = "https://terminal.invalid/"


def request_url(request: HttpRequest) -> str:
    """@target-uri as this server received it: scheme (X-Forwarded-Proto
    from the trusted proxy), Host (checked against ALLOWED_HOSTS), path and
    query."""
    return f"{request.scheme}://{request.get_host()}{request.get_full_path()}"


class DjangoRequestMessage:
    def __init__(self, request: HttpRequest, *, with_url: bool = True) -> None:
        self.method = (request.method or "GET").upper()
        self.url = request_url(request) if with_url else _UNCOVERED_URL
        self.headers = request.headers


class DjangoResponseMessage:
    def __init__(self, response: HttpResponse, request: DjangoRequestMessage) -> None:
        self.status_code = response.status_code
        self.headers: Any = response.headers
        self.request = request

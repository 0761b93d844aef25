"""Django requests and responses seen as the message objects the
`http-message-signatures` package reads (method, url, headers; status_code,
headers, request)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse

# The response signature binds only the request's Signature field; the URL
# of the request it answers is not covered, so a fixed one stands in (the
# library still wants a well-formed absolute URL).
_UNCOVERED_URL = "https://terminal.invalid/"


class DjangoRequestMessage:
    def __init__(self, request: HttpRequest, *, with_url: bool = True) -> None:
        self.method = (request.method or "GET").upper()
        # @target-uri as this server received it: scheme (X-Forwarded-Proto
        # from the trusted proxy), Host, path and query.
        self.url = request_url(request) if with_url else _UNCOVERED_URL
        self.headers = request.headers


# What request.scheme and request.get_host() read from the environ: the
# header SECURE_PROXY_SSL_HEADER names (loaded with the first request) and
# these. The same values give the same "scheme://host" until a setting
# changes.
_proxy_header: str | None = None
_ORIGINS: dict[tuple, str] = {}
_ORIGINS_MAX = 256
# Characters escape_uri_path() and iri_to_uri() leave as they are: a path or
# query made only of them is its own escaped form.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@&+$,\-_.!~*'()]*")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9/:@&+$,\-_.!~*'()#%\[\]=;?]*")


def request_url(request: HttpRequest) -> str:
    """f"{request.scheme}://{request.get_host()}{request.get_full_path()}",
    for a fraction of its cost on every signed request: scheme and host
    (which get_host() validates against ALLOWED_HOSTS) are remembered per
    combination of the environ values they are read from, and a plain path
    or query needs no escaping. A host get_host() refuses raises, as it did,
    and is never remembered. tests/terminals compare the two."""
    global _proxy_header
    if _proxy_header is None:
        configured = settings.SECURE_PROXY_SSL_HEADER
        _proxy_header = configured[0] if configured else ""
    meta = request.META
    key = (
        meta.get("wsgi.url_scheme"),
        meta.get("HTTP_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get(_proxy_header),
    )
    origin = _ORIGINS.get(key)
    if origin is None:
        origin = f"{request.scheme}://{request.get_host()}"
        if len(_ORIGINS) >= _ORIGINS_MAX:
            _ORIGINS.clear()
        _ORIGINS[key] = origin
    path = request.path
    query = meta.get("QUERY_STRING", "")
    if _PLAIN_PATH.fullmatch(path) is None or (query and _PLAIN_QUERY.fullmatch(query) is None):
        return origin + request.get_full_path()
    return f"{origin}{path}?{query}" if query else origin + path


def _origins_forget(**_kwargs: Any) -> None:
    # ALLOWED_HOSTS, SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST, ... (in
    # tests; settings do not change in a running server).
    global _proxy_header
    _proxy_header = None
    _ORIGINS.clear()


setting_changed.connect(_origins_forget)


class DjangoResponseMessage:
    def __init__(self, response: HttpResponse, request: DjangoRequestMessage) -> None:
        self.status_code = response.status_code
        self.headers: Any = response.headers
        self.request = request

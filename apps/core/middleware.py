"""Request id, security headers and the idle-session limit."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from apps.core.context import request_id_var

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Gives every request an id: the client's X-Request-ID when it is sane,
    else a new one. It is on every log line and on the response."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Set, not reset afterwards: Django logs the response ("Not Found: …")
        # after this middleware returns, and that line needs the id too. The
        # next request on this thread sets its own.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not set: a strict CSP (no
    inline script anywhere) and a closed Permissions-Policy."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class SessionIdleTimeoutMiddleware:
    """Logs a session out after SESSION_IDLE_SECONDS without a request, and
    SESSION_COOKIE_AGE after sign-in however busy it is. The second needs its
    own clock: every request writes `_last_seen`, and Django re-issues a
    modified session with a fresh SESSION_COOKIE_AGE, so the cookie's expiry
    alone would slide forever."""

    KEY = "_last_seen"
    STARTED = "_signed_in_at"

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last_seen = request.session.get(self.KEY)
            started = request.session.setdefault(self.STARTED, now)
            idle = last_seen is not None and now - int(last_seen) > settings.SESSION_IDLE_SECONDS
            if idle or now - int(started) > settings.SESSION_COOKIE_AGE:
                logout(request)
                request.session["session_expired"] = True
            else:
                request.session[self.KEY] = now
        return self.get_response(request)

"""What a request answers while one of the platform's own parts is down.

A failure of PostgreSQL, Redis or the Celery broker is not a bug: the API
answers 503 `service_unavailable` (the part in `param`) with Retry-After, a
portal or admin page answers a plain 503 page in the user's language, and
the log gets one line naming the part, not a traceback. Nothing is done
half-way: whatever raised the error was inside the request's own work
(a nonce claim, a durable transaction), which therefore did not happen, so
the same request succeeds once the part is back (docs/operations.md).

Three places hand a failure here, because Django turns an exception into a
response at the layer that raised it: the API's exception handler (DRF
views, terminal authentication included), DependencyFailureMiddleware's
process_exception (any other view) and the 500 handler (an exception raised
inside a middleware, such as the rate limit's Redis call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerOperationalError

from apps.core.context import request_id_var
from apps.core.errors import error_body

logger = logging.getLogger("apps.core.dependencies")

DATABASE = "database"
REDIS = "redis"
BROKER = "broker"

# SQLite reports a programming error (a missing migration) as an
# OperationalError too; that is a bug to see, not an outage to wait out.
_SQLITE_BUGS = ("no such table", "no such column", "near ", "table ")


def failed_dependency(exc: BaseException | None) -> str | None:
    """The part whose failure `exc` is (DATABASE, REDIS or BROKER), or None
    for anything else. Follows the chain of causes: kombu and Django wrap
    the client library's error in their own."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # The broker first: kombu raises its own error from redis-py's.
        if isinstance(exc, BrokerOperationalError):
            return BROKER
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return REDIS
        # A replica promoted late, or a failover that left us on a replica.
        if isinstance(exc, redis.exceptions.ReadOnlyError):
            return REDIS
        if isinstance(exc, DatabaseInterfaceError):
            return DATABASE
        if isinstance(exc, DatabaseOperationalError):
            if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and str(exc).startswith(
                _SQLITE_BUGS
            ):
                return None
            return DATABASE
        exc = exc.__cause__ or exc.__context__
    return None


def retry_after_seconds() -> int:
    return settings.SERVICE_UNAVAILABLE_RETRY_AFTER


def unavailable_message(dependency: str) -> str:
    names = {DATABASE: _("the database"), REDIS: _("Redis"), BROKER: _("the task broker")}
    return _(
        "The service is temporarily unavailable (%(part)s is not answering). "
        "Nothing was done; retry after %(seconds)s s."
    ) % {"part": names.get(dependency, dependency), "seconds": retry_after_seconds()}


# The request id of the request last refused on this thread (or task
# context): Django's own log line for it is dropped (DependencyFailureLogFilter).
_refused_request_id: ContextVar[str | None] = ContextVar("refused_request_id", default=None)


def dependency_failure_log(request: Any, dependency: str, exc: BaseException) -> None:
    """One line per refused request (no traceback: an outage would bury the
    log in identical ones), naming the part that failed."""
    _refused_request_id.set(request_id_var.get())
    logger.warning(
        "dependency unavailable: %s",
        dependency,
        extra={
            "dependency": dependency,
            "error": f"{exc.__class__.__name__}: {str(exc)[:200]}",
            "path": getattr(request, "path", None),
        },
    )


def dependency_failure_response(request: HttpRequest, dependency: str) -> HttpResponse:
    """The 503 answer outside DRF: the API's error object under /api/, else
    the plain 503 page (templates/503.html) in the request's language. The
    page is rendered without the request's context processors: they read
    the database, which may be what is down."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        body = error_body(
            "service_unavailable",
            unavailable_message(dependency),
            param=dependency,
            request=request,
        )
        response = JsonResponse(body, status=503)
    else:
        language = translation.get_language_from_request(request)
        with translation.override(language):
            html = render_to_string(
                "503.html",
                {
                    "dependency": dependency,
                    "retry_after": retry_after_seconds(),
                    "request_id": getattr(request, "request_id", ""),
                    "LANGUAGE_CODE": translation.get_language(),
                },
            )
        response = HttpResponse(html, status=503)
        response["Content-Language"] = language
    response["Retry-After"] = str(retry_after_seconds())
    return response


class DependencyFailureMiddleware:
    """A view that raised because the database, Redis or the broker is down
    answers 503 (dependency_failure_response) instead of 500, also with
    DEBUG on. DRF views answer through the API's exception handler first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        dependency = failed_dependency(exception)
        if dependency is None:
            return None
        dependency_failure_log(request, dependency, exception)
        return dependency_failure_response(request, dependency)


class DependencyFailureLogFilter(logging.Filter):
    """On the `django.request` logger: drops Django's line (and traceback)
    for a request already refused and logged as a dependency failure. A
    failure shown some other way (DEBUG's technical page) keeps its
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        refused = _refused_request_id.get()
        return refused is None or refused != request_id_var.get()

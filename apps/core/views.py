from __future__ import annotations

import logging
import sys
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core import dependencies
from apps.core.errors import error_body

logger = logging.getLogger(__name__)


def _check(fn) -> dict:
    started = time.perf_counter()
    try:
        detail = fn()
    except Exception as exc:  # a health check reports, it never raises
        logger.warning("health check failed", extra={"check": fn.__name__, "error": repr(exc)})
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2), **(detail or {})}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _cache() -> dict:
    cache.set("healthz", "1", timeout=10)
    if cache.get("healthz") != "1":
        raise RuntimeError("cache did not return what was written")
    return {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def _broker() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"mode": "in-process"}
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"mode": "broker"}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check(_database), "cache": _check(_cache), "broker": _check(_broker)}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found.", request=request), status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while Django handles the exception (response_for_exception),
    # so sys.exc_info() holds it: an exception a middleware raised (the
    # rate limit's Redis call, a session read) arrives here, not at a
    # middleware's process_exception.
    failed = sys.exc_info()[1]
    dependency = dependencies.failed_dependency(failed)
    if dependency is not None and failed is not None:
        dependencies.dependency_failure_log(request, dependency, failed)
        return dependencies.dependency_failure_response(request, dependency)
    if request.path.startswith("/api/"):
        body = error_body(
            "internal_error", "The server could not complete the request.", request=request
        )
        return JsonResponse(body, status=500)
    return render(request, "500.html", status=500)

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core import dependencies
from apps.core.errors import error_body
from apps.core.heartbeats import (
    BEAT,
    SCHEDULED,
    WORKER,
    liveness_all,
    liveness_problems,
    stale_after,
)
from apps.core.models import ScheduledRun

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

    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"mode": "broker"}


# Jobs whose age /healthz reports, by their ScheduledRun name (beat entry).
HEALTHZ_JOBS = {"balance_monitor": "risk-balance-monitor", "detector_sweep": "risk-detectors-sweep"}


def _job(name: str, now: datetime) -> dict:
    every = settings.CELERY_BEAT_SCHEDULE[name]["schedule"]
    run = ScheduledRun.objects.filter(name=name).first()
    age = int((now - run.last_run_at).total_seconds()) if run else None
    limit = stale_after(every)
    return {
        # None: never ran yet (a fresh start), not judged.
        "ok": None if run is None else now - run.last_run_at <= limit,
        "last_run_at": run.last_run_at.isoformat() if run else None,
        "age_seconds": age,
        "stale_after_seconds": int(limit.total_seconds()),
    }


def _background(now: datetime) -> dict:
    """The heartbeats, the jobs' ages and the problems they show."""
    states = liveness_all(now)
    mode = "broker" if settings.CELERY_BROKER_URL else "in-process"
    processes = {
        "worker": states[WORKER].as_json(now) | {"mode": mode},
        "beat": states[BEAT].as_json(now) | {"mode": mode},
        "scheduled_heartbeat": states[SCHEDULED].as_json(now) | {"mode": mode},
    }
    jobs = {key: _job(name, now) for key, name in HEALTHZ_JOBS.items()}
    for key, path in settings.HEALTHZ_REPORTS.items():
        jobs[key] = import_string(path)(now)
    with translation.override("en"):  # for operators' tools, whatever the request's language
        problems = liveness_problems(states, now)
    for key, job in jobs.items():
        if job["ok"] is False:
            age = job["age_seconds"]
            problems.append(
                f"{key}: late, last run {age} s ago"
                if age is not None
                else f"{key}: never succeeded"
            )
    return {"processes": processes, "jobs": jobs, "problems": problems}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Each dependency's state, the background processes' heartbeats and the
    age of the jobs that watch the money (docs/operations.md, "/healthz").
    503 when a dependency is down; with ?strict=1 also when a process or a
    job is late (for an alerting probe; a load balancer uses the plain one)."""
    now = timezone.now()
    checks = {"database": _check(_database), "cache": _check(_cache), "broker": _check(_broker)}
    problems = [f"{name}: unavailable" for name, check in checks.items() if not check["ok"]]
    body: dict = {"status": "ok", "checks": checks}
    if checks["database"]["ok"]:
        try:
            body.update(_background(now))
        except DatabaseError as exc:
            problems.append(f"database: background state unreadable ({exc.__class__.__name__})")
    body["problems"] = problems + body.get("problems", [])
    if problems:  # a dependency is down
        body["status"] = "unavailable"
    elif body["problems"]:
        body["status"] = "degraded"
    if body["problems"]:
        logger.warning("healthz: %s", body["status"], extra={"problems": body["problems"]})
    strict = request.GET.get("strict") == "1"
    failing = body["status"] == "unavailable" or (strict and body["status"] == "degraded")
    return JsonResponse(body, status=503 if failing else 200)


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

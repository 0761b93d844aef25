"""Celery wiring: tenant tasks carry their merchant explicitly; the embedded
scheduler runs periodic jobs on time; with Redis, a real worker runs tasks."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import shared_task
from django.conf import settings
from django.db import connection

from apps.core.context import merchant_id_var
from apps.core.models import ScheduledRun
from apps.core.scheduler import EmbeddedBeat
from apps.core.tasks import merchant_task
from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
seen: list[str | None] = []


@merchant_task(name="tests.core.record_merchant")
def record_merchant(*, merchant_id: str) -> str | None:
    seen.append(merchant_id_var.get())
    return merchant_id_var.get()


@shared_task(name="tests.core.record_context")
def record_context() -> None:
    seen.append(merchant_id_var.get())


def test_a_tenant_task_needs_an_explicit_merchant_id():
    with pytest.raises(ValueError, match="explicit merchant_id"):
        record_merchant.delay()


def test_a_task_never_inherits_the_merchant_of_the_task_before_it():
    seen.clear()
    record_merchant.delay(merchant_id="m-1")
    record_context.delay()
    record_merchant.delay(merchant_id="m-2")
    assert seen == ["m-1", None, "m-2"]
    assert merchant_id_var.get() is None


def test_a_task_started_inside_a_tenant_context_still_starts_clean():
    seen.clear()
    token = merchant_id_var.set("leaked")
    try:
        record_context.delay()
    finally:
        merchant_id_var.reset(token)
    assert seen == [None]


def test_the_embedded_scheduler_runs_jobs_when_they_are_due(db):
    original = app.conf.beat_schedule
    app.conf.beat_schedule = {"hb": {"task": "apps.core.tasks.heartbeat", "schedule": 0.3}}
    try:
        beat = EmbeddedBeat(app)
        assert beat.run_due() == []  # not due right after start
        time.sleep(0.35)
        assert beat.run_due() == ["hb"]
        assert beat.run_due() == []  # not again until the next interval
        time.sleep(0.35)
        assert beat.run_due() == ["hb"]
    finally:
        app.conf.beat_schedule = original
    assert ScheduledRun.objects.get(name="core-heartbeat").runs == 2


def test_the_embedded_scheduler_thread_keeps_running_after_a_job_fails(db):
    original = app.conf.beat_schedule
    app.conf.beat_schedule = {
        "boom": {"task": "tests.core.record_merchant", "schedule": 0.05},  # no merchant: raises
        "hb": {"task": "apps.core.tasks.heartbeat", "schedule": 0.05},
    }
    try:
        beat = EmbeddedBeat(app, tick=0.02)
        time.sleep(0.06)
        assert beat.run_due() == ["hb"]
    finally:
        app.conf.beat_schedule = original


def test_the_periodic_jobs_are_all_registered_tasks():
    app.loader.import_default_modules()  # what a worker does at start
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, f"{name}: {entry['task']} is not a registered task"


@pytest.mark.redis
@pytest.mark.postgres
def test_a_real_worker_runs_tasks_through_the_redis_broker(transactional_db):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db_url = settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    env = dict(os.environ, DATABASE_URL=db_url, CELERY_TASK_ALWAYS_EAGER="0")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        app.send_task("apps.core.tasks.heartbeat", queue=queue)
        deadline = time.monotonic() + 180  # a loaded CI machine starts celery slowly
        while time.monotonic() < deadline:
            if ScheduledRun.objects.filter(name="core-heartbeat").exists():
                break
            time.sleep(0.25)
        assert ScheduledRun.objects.filter(name="core-heartbeat").exists(), (
            "the worker did not run the task"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)

"""/healthz (issue 19): each dependency's state, the worker's and beat's
heartbeats, the age of the balance monitor, the detector sweep and the last
backup; with a broker, a worker or beat not seen for longer than its
schedule shows on /healthz, on the admin dashboard and in the log."""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.backups.models import BackupRun
from apps.core.heartbeats import BEAT, SCHEDULED, WORKER, HeartbeatThread
from apps.core.models import ScheduledRun

BROKER = pytest.mark.redis  # heartbeats are judged only with a broker


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def beats(**ages_seconds):
    now = timezone.now()
    for name, age in ages_seconds.items():
        ScheduledRun.objects.update_or_create(
            name=name, defaults={"last_run_at": now - timedelta(seconds=age)}
        )


def all_fresh():
    beats(
        **{
            WORKER: 5,
            BEAT: 5,
            SCHEDULED: 30,
            "risk-balance-monitor": 60,
            "risk-detectors-sweep": 60,
        }
    )


@BROKER
def test_healthz_is_ok_when_every_dependency_answers_and_every_heartbeat_is_fresh(client, db):
    all_fresh()
    BackupRun.objects.create(
        trigger="scheduled",
        status=BackupRun.Status.SUCCEEDED,
        started_at=timezone.now() - timedelta(hours=2),
        engine="postgresql",
    )
    response = client.get("/healthz?strict=1")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert all(check["ok"] for check in body["checks"].values())
    assert body["processes"]["worker"]["ok"] is True
    assert body["processes"]["worker"]["age_seconds"] >= 5
    assert body["processes"]["beat"]["mode"] == "broker"
    assert body["jobs"]["balance_monitor"]["ok"] is True
    assert 60 <= body["jobs"]["balance_monitor"]["age_seconds"] < 120
    assert body["jobs"]["detector_sweep"]["stale_after_seconds"] == 2 * 15 * 60 + 60
    assert body["jobs"]["backup"]["ok"] is True
    assert body["jobs"]["backup"]["last_status"] == "succeeded"
    assert 7200 <= body["jobs"]["backup"]["age_seconds"] < 7300


@BROKER
def test_with_no_worker_seen_healthz_the_admin_dashboard_and_the_log_say_so(
    client, staff_client, db, caplog
):
    all_fresh()
    beats(**{WORKER: 600})
    caplog.set_level(logging.WARNING)
    response = client.get("/healthz")
    # Still 200 for a load balancer: the web process serves; ?strict=1 is for alerting.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["processes"]["worker"]["ok"] is False
    assert body["problems"][0].startswith("No Celery worker seen for 6")
    assert client.get("/healthz?strict=1").status_code == 503
    assert any(
        r.getMessage() == "healthz: degraded" and "No Celery worker" in str(r.problems)
        for r in caplog.records
    )
    page = staff_client.get("/admin/", headers={"Accept-Language": "en"})
    assert 'id="background-problems"' in page.content.decode()
    assert "No Celery worker seen for" in page.content.decode()


@BROKER
def test_with_beat_never_seen_healthz_names_beat_and_what_it_does_not_schedule(client, db):
    all_fresh()
    ScheduledRun.objects.filter(name=BEAT).delete()
    body = client.get("/healthz").json()
    assert body["processes"]["beat"]["ok"] is False
    assert body["processes"]["beat"]["last_seen_at"] is None
    assert any(p.startswith("Celery beat not seen yet") for p in body["problems"])


@BROKER
def test_a_late_balance_monitor_and_an_old_backup_are_problems(client, db):
    all_fresh()
    beats(**{"risk-balance-monitor": 30 * 60})
    BackupRun.objects.create(
        trigger="scheduled",
        status=BackupRun.Status.SUCCEEDED,
        started_at=timezone.now() - timedelta(hours=30),
        engine="postgresql",
    )
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["jobs"]["balance_monitor"]["ok"] is False
    assert body["jobs"]["backup"]["ok"] is False
    assert any(p.startswith("balance_monitor: late, last run 18") for p in body["problems"])
    assert any(p.startswith("backup: late") for p in body["problems"])


def test_without_a_broker_heartbeats_are_reported_but_not_judged(client, db, settings):
    settings.CELERY_BROKER_URL = None
    body = client.get("/healthz").json()
    assert body["checks"]["broker"]["mode"] == "in-process"
    assert body["processes"]["worker"]["mode"] == "in-process"
    assert body["processes"]["worker"]["ok"] is None
    assert body["jobs"]["balance_monitor"]["ok"] is None  # never ran: a fresh start
    assert body["status"] == "ok"


def test_healthz_answers_503_naming_the_broker_when_it_does_not_answer(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "broker: unavailable" in body["problems"]


@pytest.mark.redis
def test_healthz_answers_503_naming_the_cache_when_redis_does_not_answer(client, db, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {"ok": False, "error": "ConnectionError"}


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_thread_records_its_beat_and_logs_while_the_other_is_stale(caplog, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"  # judged; never connected here
    caplog.set_level(logging.WARNING)
    thread = HeartbeatThread(WORKER, every=0.05, watches=BEAT)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and not ScheduledRun.objects.filter(name=WORKER, runs__gte=2).exists()
        ):
            time.sleep(0.05)
    finally:
        thread.stop()
        thread.join(timeout=5)
    assert ScheduledRun.objects.get(name=WORKER).runs >= 2
    assert any(
        r.getMessage() == f"heartbeat stale: {BEAT}" and r.threadName == f"heartbeat-{WORKER}"
        for r in caplog.records
    )

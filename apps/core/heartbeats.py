"""Is anyone running the background work? With a broker (REDIS_URL) the
async detectors, balance monitoring, hold expiry and backups run only if a
Celery worker and Celery beat are up, and nothing else would notice that
they are not.

Three heartbeats, each a core.ScheduledRun row:

- `celery-worker`: a thread of every worker's main process, every
  WORKER_HEARTBEAT_SECONDS;
- `celery-beat`: a thread of the beat process, every BEAT_HEARTBEAT_SECONDS;
- `core-heartbeat`: the beat-scheduled task (apps.core.tasks.heartbeat), the
  whole chain beat → broker → worker.

One is stale after twice its interval plus a minute (the monitors' monitor's
rule, apps/risk/monitoring.py). /healthz reports them, the admin dashboard
shows a warning, and each process's thread logs a warning while the other
process's heartbeat is stale. Without a broker every job runs in-process and
none of this is judged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.models import ScheduledRun

logger = logging.getLogger(__name__)

WORKER = "celery-worker"
BEAT = "celery-beat"
SCHEDULED = "core-heartbeat"


def stale_after(every: timedelta) -> timedelta:
    return 2 * every + timedelta(minutes=1)


def heartbeat_intervals() -> dict[str, timedelta]:
    return {
        WORKER: timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS),
        BEAT: timedelta(seconds=settings.BEAT_HEARTBEAT_SECONDS),
        SCHEDULED: settings.CELERY_BEAT_SCHEDULE[SCHEDULED]["schedule"],
    }


@dataclass(frozen=True)
class Liveness:
    """One heartbeat's state. `ok` is None when it is not judged (no broker)."""

    name: str
    last_seen_at: datetime | None
    every: timedelta
    ok: bool | None

    def age_seconds(self, now: datetime) -> int | None:
        return None if self.last_seen_at is None else int((now - self.last_seen_at).total_seconds())

    def as_json(self, now: datetime) -> dict:
        return {
            "ok": self.ok,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "age_seconds": self.age_seconds(now),
            "every_seconds": int(self.every.total_seconds()),
            "stale_after_seconds": int(stale_after(self.every).total_seconds()),
        }


def liveness_all(now: datetime) -> dict[str, Liveness]:
    """The three heartbeats, judged only when a broker is configured."""
    judged = bool(settings.CELERY_BROKER_URL)
    runs = dict(
        ScheduledRun.objects.filter(name__in=[WORKER, BEAT, SCHEDULED]).values_list(
            "name", "last_run_at"
        )
    )
    states = {}
    for name, every in heartbeat_intervals().items():
        last = runs.get(name)
        ok = (last is not None and now - last <= stale_after(every)) if judged else None
        states[name] = Liveness(name, last, every, ok)
    return states


def liveness_problems(states: dict[str, Liveness], now: datetime) -> list[str]:
    """What an operator must hear, in words (translated): which process is
    not seen, and what does not run because of it."""
    problems = []
    worker, beat, scheduled = states[WORKER], states[BEAT], states[SCHEDULED]
    if worker.ok is False:
        problems.append(
            _(
                "No Celery worker seen for %(age)s s: async detectors, balance monitoring, "
                "hold expiry and backups are not running."
            )
            % {"age": worker.age_seconds(now)}
            if worker.last_seen_at
            else _(
                "No Celery worker seen yet: async detectors, balance monitoring, "
                "hold expiry and backups are not running."
            )
        )
    if beat.ok is False:
        problems.append(
            _(
                "Celery beat not seen for %(age)s s: no periodic job (balance monitoring, "
                "detector sweeps, backups) is being scheduled."
            )
            % {"age": beat.age_seconds(now)}
            if beat.last_seen_at
            else _(
                "Celery beat not seen yet: no periodic job (balance monitoring, "
                "detector sweeps, backups) is being scheduled."
            )
        )
    if worker.ok and beat.ok and scheduled.ok is False:
        problems.append(
            _(
                "Worker and beat are up, but the scheduled heartbeat task has not run: "
                "scheduled tasks are not reaching the worker."
            )
        )
    return problems


def heartbeat_record(name: str) -> None:
    """Records one heartbeat; a database outage is logged, never raised (the
    thread must outlive it). Connections are closed around it: this runs
    outside any request or task, where Django would do it."""
    close_old_connections()
    try:
        ScheduledRun.record(name)
    except DatabaseError as exc:
        logger.warning("heartbeat not recorded", extra={"heartbeat": name, "error": repr(exc)})
    finally:
        close_old_connections()


class HeartbeatThread(threading.Thread):
    """Records `name` every `every` seconds and logs a warning while the
    heartbeat `watches` (the other process's) is stale."""

    def __init__(self, name: str, every: float, watches: str) -> None:
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.heartbeat = name
        self.every = every
        self.watches = watches
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            heartbeat_record(self.heartbeat)
            self.check()
            self.stopped.wait(self.every)

    def check(self) -> None:
        try:
            state = liveness_all(timezone.now())[self.watches]
        except DatabaseError:
            return
        finally:
            close_old_connections()
        if state.ok is False:
            logger.warning(
                "heartbeat stale: %s",
                self.watches,
                extra={
                    "heartbeat": self.watches,
                    "last_seen_at": state.last_seen_at.isoformat() if state.last_seen_at else None,
                },
            )

    def stop(self) -> None:
        self.stopped.set()


_running: dict[str, HeartbeatThread] = {}
_lock = threading.Lock()


def heartbeat_start(name: str, *, every: float, watches: str) -> HeartbeatThread:
    """Starts this process's heartbeat thread once (signals may repeat)."""
    with _lock:
        thread = _running.get(name)
        if thread is None or not thread.is_alive():
            thread = _running[name] = HeartbeatThread(name, every, watches)
            thread.start()
        return thread


def heartbeat_stop(name: str) -> None:
    with _lock:
        thread = _running.pop(name, None)
    if thread is not None:
        thread.stop()

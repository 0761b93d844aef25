"""The beat schedule, run on a thread inside the web process when there is no
broker (the embedded setup). With REDIS_URL, `celery beat` does this job."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from celery import Celery
from celery.schedules import maybe_schedule

logger = logging.getLogger(__name__)


class EmbeddedBeat(threading.Thread):
    def __init__(self, app: Celery, *, tick: float = 1.0, run_at_start: bool = False) -> None:
        super().__init__(name="embedded-beat", daemon=True)
        self.app = app
        self.tick = tick
        self.run_at_start = run_at_start
        self.stopped = threading.Event()
        self.entries: dict[str, dict[str, Any]] = {}
        # A worker imports every app's tasks module at start (autodiscovery
        # is lazy); the embedded beat must do the same before it looks up
        # tasks by name.
        app.loader.import_default_modules()
        for name, entry in (app.conf.beat_schedule or {}).items():
            schedule = maybe_schedule(entry["schedule"], app=app)
            self.entries[name] = {
                "task": entry["task"],
                "schedule": schedule,
                "args": tuple(entry.get("args", ())),
                "kwargs": dict(entry.get("kwargs", {})),
                "last_run_at": None if run_at_start else schedule.now(),
            }

    def stop(self) -> None:
        self.stopped.set()

    def run_due(self) -> list[str]:
        """Runs every entry that is due; returns their names."""
        ran = []
        for name, entry in self.entries.items():
            last: datetime | None = entry["last_run_at"]
            due = last is None or entry["schedule"].is_due(last)[0]
            if not due:
                continue
            entry["last_run_at"] = entry["schedule"].now()
            try:
                self.app.tasks[entry["task"]].apply(
                    args=entry["args"], kwargs=entry["kwargs"], throw=True
                )
                ran.append(name)
            except Exception:
                logger.exception("scheduled job failed", extra={"job": name})
        return ran

    def run(self) -> None:
        logger.info("embedded beat started", extra={"jobs": ",".join(self.entries)})
        while not self.stopped.wait(self.tick):
            self.run_due()

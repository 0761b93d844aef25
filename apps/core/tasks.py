"""Task plumbing shared by every app.

`merchant_task` is the only way to write a task that acts for a tenant: the
merchant id is a required, explicit argument; it is set as the task's log
context and cleared afterwards, so no task can inherit the tenant of the one
that ran before it on the same worker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

from apps.core.context import merchant_id_var

logger = logging.getLogger(__name__)


def merchant_task(*task_args: Any, **task_options: Any) -> Callable:
    def decorate(fn: Callable) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, merchant_id: str | None = None, **kwargs: Any) -> Any:
            if not merchant_id:
                raise ValueError(f"{fn.__name__} needs an explicit merchant_id")
            token = merchant_id_var.set(str(merchant_id))
            try:
                return fn(*args, merchant_id=str(merchant_id), **kwargs)
            finally:
                merchant_id_var.reset(token)

        return shared_task(*task_args, **task_options)(run)

    return decorate


@shared_task(name="apps.core.tasks.heartbeat")
def heartbeat() -> str:
    """Proves the scheduler runs; the monitors' monitor (risk) reads its runs."""
    from apps.core.models import ScheduledRun

    ScheduledRun.record("core-heartbeat")
    logger.info("heartbeat")
    return "ok"

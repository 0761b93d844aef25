"""Every task starts with a clean context: its own log id and no merchant,
whatever the previous task on this worker (or thread) had set. In eager mode
the caller's context is restored afterwards.

A worker's and beat's main process start their heartbeat thread
(apps/core/heartbeats.py) once they are up."""

from contextvars import Token
from typing import Any

from celery.signals import beat_init, task_postrun, task_prerun, worker_ready, worker_shutdown
from django.conf import settings

from apps.core.context import merchant_id_var, request_id_var
from apps.core.heartbeats import BEAT, WORKER, heartbeat_start, heartbeat_stop

_tokens: dict[str, tuple[Token, Token]] = {}


@task_prerun.connect
def _task_context_enter(task_id: str | None = None, **_kwargs: object) -> None:
    if task_id is None:
        return
    _tokens[task_id] = (request_id_var.set(f"task-{task_id}"), merchant_id_var.set(None))


@task_postrun.connect
def _task_context_exit(task_id: str | None = None, **_kwargs: object) -> None:
    tokens = _tokens.pop(task_id, None) if task_id else None
    if tokens:
        request_token, merchant_token = tokens
        merchant_id_var.reset(merchant_token)
        request_id_var.reset(request_token)


@worker_ready.connect
def _worker_heartbeat_start(**_kwargs: Any) -> None:
    heartbeat_start(WORKER, every=settings.WORKER_HEARTBEAT_SECONDS, watches=BEAT)


@worker_shutdown.connect
def _worker_heartbeat_stop(**_kwargs: Any) -> None:
    heartbeat_stop(WORKER)


@beat_init.connect
def _beat_heartbeat_start(**_kwargs: Any) -> None:
    heartbeat_start(BEAT, every=settings.BEAT_HEARTBEAT_SECONDS, watches=WORKER)

"""Every task starts with a clean context: its own log id and no merchant,
whatever the previous task on this worker (or thread) had set. In eager mode
the caller's context is restored afterwards."""

from contextvars import Token

from celery.signals import task_postrun, task_prerun

from apps.core.context import merchant_id_var, request_id_var

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

"""Per-request / per-task context carried in contextvars, never thread-locals:
a Celery task or request starts with a clean context (see celery_signals)."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
merchant_id_var: ContextVar[str | None] = ContextVar("merchant_id", default=None)

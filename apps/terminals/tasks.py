"""Periodic jobs of the terminals app (thin: the work is in replay.py)."""

from celery import shared_task

from apps.core.models import ScheduledRun
from apps.terminals.replay import nonces_prune


@shared_task(name="apps.terminals.tasks.terminal_nonces_prune")
def terminal_nonces_prune() -> int:
    deleted = nonces_prune()
    ScheduledRun.record("terminal_nonces_prune")
    return deleted

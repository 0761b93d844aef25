"""The Celery app. With REDIS_URL it talks to a real broker (worker + beat);
without, tasks run eagerly in-process and `manage.py serve` runs the beat
schedule on a thread (apps.core.scheduler)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("anfu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

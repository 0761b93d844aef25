from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: money, request ids, errors, rate limits, health."""

    name = "apps.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core import celery_signals  # noqa: F401

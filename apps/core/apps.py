from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: money, request ids, errors, rate limits, health."""

    name = "apps.core"
    label = "core"
    verbose_name = _("core")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core import celery_signals  # noqa: F401

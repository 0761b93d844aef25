from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TerminalsConfig(AppConfig):
    """POS terminals: activation, keys, request/response signing, operators, location binding."""

    name = "apps.terminals"
    label = "terminals"
    verbose_name = _("terminals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the signing scheme with drf-spectacular, and the periodic
        # task with Celery wherever the schedule is read.
        from apps.terminals import tasks  # noqa: F401
        from apps.terminals.api import schema  # noqa: F401

from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    """POS terminals: activation, keys, request/response signing, operators, location binding."""

    name = "apps.terminals"
    label = "terminals"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The tamper-evident audit trail and security events (cross-cutting)."""

    name = "apps.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"

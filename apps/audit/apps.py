from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """The tamper-evident audit trail and security events (cross-cutting)."""

    name = "apps.audit"
    label = "audit"
    verbose_name = _("audit trail")
    default_auto_field = "django.db.models.BigAutoField"

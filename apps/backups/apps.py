from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackupsConfig(AppConfig):
    """Encrypted, verified backups on several targets, restore and restore drills."""

    name = "apps.backups"
    label = "backups"
    verbose_name = _("backups")
    default_auto_field = "django.db.models.BigAutoField"

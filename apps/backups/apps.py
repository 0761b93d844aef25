from django.apps import AppConfig


class BackupsConfig(AppConfig):
    """Encrypted, verified backups on several targets, restore and restore drills."""

    name = "apps.backups"
    label = "backups"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The merchant portal's views and forms (UI only: rules live in the services)."""

    name = "apps.portal"
    label = "portal"
    default_auto_field = "django.db.models.BigAutoField"

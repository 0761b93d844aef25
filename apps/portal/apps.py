from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The merchant portal's views and forms (UI only: rules live in the services)."""

    name = "apps.portal"
    label = "portal"
    verbose_name = _("merchant portal")
    default_auto_field = "django.db.models.BigAutoField"

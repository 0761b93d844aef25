from django.apps import AppConfig


class RiskConfig(AppConfig):
    """Real-time rules, holds and cases, async detectors, balance monitoring, alerts."""

    name = "apps.risk"
    label = "risk"
    default_auto_field = "django.db.models.BigAutoField"

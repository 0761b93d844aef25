from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RiskConfig(AppConfig):
    """Real-time rules, holds and cases, async detectors, balance monitoring, alerts."""

    name = "apps.risk"
    label = "risk"
    verbose_name = _("risk")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.risk.config import config_invalidate
        from apps.risk.models import ListEntry, RuleConfig

        def invalidate(**kwargs) -> None:
            # However a rule or list changed (service, admin, shell), every
            # process's cached configuration refreshes.
            config_invalidate()

        for model in (RuleConfig, ListEntry):
            post_save.connect(
                invalidate,
                sender=model,
                weak=False,
                dispatch_uid=f"risk-config-{model.__name__}-save",
            )
            post_delete.connect(
                invalidate,
                sender=model,
                weak=False,
                dispatch_uid=f"risk-config-{model.__name__}-delete",
            )

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TerminalsConfig(AppConfig):
    """POS terminals: activation, keys, request/response signing, operators, location binding."""

    name = "apps.terminals"
    label = "terminals"
    verbose_name = _("terminals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing `tasks` and `api.schema` registers the periodic task with
        # Celery (wherever the schedule is read) and the signing scheme with
        # drf-spectacular.
        from django.db import transaction
        from django.db.models.signals import post_save

        from apps.accounts.models import Shop
        from apps.terminals import tasks  # noqa: F401
        from apps.terminals.api import schema  # noqa: F401
        from apps.terminals.models import Terminal
        from apps.terminals.selectors import terminal_auth_cache_forget

        def shop_saved(sender, instance, **kwargs) -> None:
            # A terminal's cached auth entry carries its shop (place, hours:
            # what the risk rules compare with); however a shop is edited,
            # its terminals load it afresh on their next request.
            ids = list(Terminal.objects.filter(shop=instance).values_list("public_id", flat=True))
            for public_id in ids:
                transaction.on_commit(lambda p=public_id: terminal_auth_cache_forget(p))

        post_save.connect(shop_saved, sender=Shop, weak=False, dispatch_uid="terminals-shop-saved")

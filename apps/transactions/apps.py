from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TransactionsConfig(AppConfig):
    """The ledger, payments, payment codes, refunds, reversals, idempotency, settlement."""

    name = "apps.transactions"
    label = "transactions"
    verbose_name = _("transactions and ledger")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.risk.holds import hold_conclusion_register
        from apps.transactions.services.holds import payment_hold_conclude

        # Risk decides held payments; the ledger moves their money.
        hold_conclusion_register(payment_hold_conclude)

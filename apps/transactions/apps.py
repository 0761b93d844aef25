from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    """The ledger, payments, payment codes, refunds, reversals, idempotency, settlement."""

    name = "apps.transactions"
    label = "transactions"
    default_auto_field = "django.db.models.BigAutoField"

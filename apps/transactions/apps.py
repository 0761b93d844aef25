from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TransactionsConfig(AppConfig):
    """The ledger, payments, payment codes, refunds, reversals, idempotency, settlement."""

    name = "apps.transactions"
    label = "transactions"
    verbose_name = _("transactions and ledger")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.risk.signals import hold_resolved

        hold_resolved.connect(_hold_resolved, dispatch_uid="transactions.payment_hold_resolved")


def _hold_resolved(sender, *, payment_public_id, result, actor=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    # Compliance (or expiry) moved a held payment's money: the payment follows.
    from apps.transactions.services import payment_hold_resolved

    payment_hold_resolved(payment_public_id=payment_public_id, result=result, actor=actor)

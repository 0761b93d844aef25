"""Helpers that put money on the ledger through the real services."""

from __future__ import annotations

from apps.accounts.models import Merchant, Payer
from apps.core.money import Money
from apps.transactions.models import AccountKind, LedgerAccount
from apps.transactions.selectors import ledger_platform_balance
from apps.transactions.services import wallet_top_up
from tests.accounts.factories import MerchantFactory, PayerFactory


def funded_payer(fen: int, **kwargs) -> Payer:
    payer = PayerFactory(**kwargs)
    if fen:
        wallet_top_up(payer=payer, amount=Money(fen), reason="test funding", actor="test")
    return payer


def merchant_with_rate(rate_bp: int = 38) -> Merchant:
    return MerchantFactory(discount_rate_bp=rate_bp)


def balance_of(**owner) -> int:
    """A cached balance read fresh from the database (0 if no account yet)."""
    row = LedgerAccount.objects.filter(**owner).values_list("balance", flat=True).first()
    return row or 0


def platform_balance(kind: str) -> int:
    """A platform account's balance (fee revenue summed over its slots)."""
    return ledger_platform_balance(kind=kind).amount


FEE = AccountKind.FEE_REVENUE
HOLD = AccountKind.RISK_HOLD
CLEARING = AccountKind.EXTERNAL_CLEARING

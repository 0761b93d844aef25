"""Mounted under /api/v1/wallet/ next to apps.accounts.api.wallet_urls."""

from django.urls import path

from apps.transactions.api import views

urlpatterns = [
    path("balance", views.WalletBalanceView.as_view(), name="wallet-balance"),
    path("history", views.WalletHistoryView.as_view(), name="wallet-history"),
]

"""Base classes for tenant-scoped API views."""

from __future__ import annotations

from typing import Any

from rest_framework import generics

from apps.accounts.tenancy import API_MERCHANT_HEADER, TenantScopedMixin, membership_resolve


def api_merchant_resolve(request: Any) -> Any:
    """The merchant an API request acts for: a signed terminal's own merchant,
    else the authenticated staff user's membership named in the Anfu-Merchant
    header (or their only one). None when there is no such merchant."""
    terminal = getattr(request, "terminal", None) or getattr(request._request, "terminal", None)
    if terminal is not None:
        return terminal.merchant
    membership = membership_resolve(request.user, request.headers.get(API_MERCHANT_HEADER))
    request.membership = membership
    return membership.merchant if membership else None


class TenantScopedAPIMixin(TenantScopedMixin):
    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        request.merchant = api_merchant_resolve(request)


class TenantListAPIView(TenantScopedAPIMixin, generics.ListAPIView):
    pass


class TenantRetrieveAPIView(TenantScopedAPIMixin, generics.RetrieveAPIView):
    pass

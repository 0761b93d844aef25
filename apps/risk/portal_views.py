"""The merchant portal's page of held payments: amount and status only, never
the rules that caught the payment (those are compliance's)."""

from __future__ import annotations

from django.views.generic import ListView

from apps.accounts.tenancy import TenantScopedMixin
from apps.portal.views import PortalView
from apps.risk.models import RiskHold


class RiskHoldListView(PortalView, TenantScopedMixin, ListView):
    capability = "view_transactions"
    model = RiskHold
    template_name = "risk/portal_holds.html"
    context_object_name = "holds"
    paginate_by = 50

    def refine_queryset(self, queryset):
        return queryset.order_by("-created_at", "-pk")

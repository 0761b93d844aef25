from apps.accounts.api.base import TenantListAPIView, TenantRetrieveAPIView
from apps.accounts.api.serializers import MembershipOutput
from apps.accounts.models import Membership


class StaffListApi(TenantListAPIView):
    """The current merchant's staff."""

    model = Membership
    serializer_class = MembershipOutput

    def refine_queryset(self, queryset):
        return queryset.select_related("user").order_by("created_at", "pk")


class StaffDetailApi(TenantRetrieveAPIView):
    model = Membership
    serializer_class = MembershipOutput

    def refine_queryset(self, queryset):
        return queryset.select_related("user")

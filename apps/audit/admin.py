from django.contrib import admin

from apps.audit.models import AuditRecord, SecurityEvent
from apps.portal.admin_tools import CappedCountPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator  # count at most 10,000 rows of a filtered list

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_label",
        "merchant_id",
        "target_type",
        "target_id",
    )
    list_filter = ("action",)
    search_fields = ("=merchant_id", "=target_id", "=actor_id", "=request_id")
    date_hierarchy = "created_at"


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "severity", "merchant_id", "actor_id", "ip")
    list_filter = ("severity", "kind")
    search_fields = ("=merchant_id", "=actor_id", "=ip")
    date_hierarchy = "created_at"

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.audit.models import AuditRecord, SecurityEvent
from apps.portal.admin_tools import ReadOnlyAdminMixin


class RecentValuesFilter(admin.SimpleListFilter):
    """Offers the values of a column seen in the newest rows. Django's own
    filter for a free-text column runs SELECT DISTINCT over the whole table
    on every page view: millions of audit rows. Any value still filters
    (by URL), and the column's index serves the filtered list."""

    sample = 5_000

    def lookups(self, request, model_admin):
        newest = model_admin.model.objects.order_by("-pk").values_list(
            self.parameter_name, flat=True
        )[: self.sample]
        return [(value, value) for value in sorted(set(newest))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class ActionFilter(RecentValuesFilter):
    title = _("action")
    parameter_name = "action"


class KindFilter(RecentValuesFilter):
    title = _("kind")
    parameter_name = "kind"


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_label",
        "merchant_id",
        "target_type",
        "target_id",
    )
    list_filter = (ActionFilter,)
    search_fields = ("=merchant_id", "=target_id", "=actor_id", "=request_id")
    date_hierarchy = "created_at"


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "severity", "merchant_id", "actor_id", "ip")
    list_filter = ("severity", KindFilter)
    search_fields = ("=merchant_id", "=actor_id", "=ip")
    date_hierarchy = "created_at"

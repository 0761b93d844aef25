"""Compliance's view of terminals: read-only. Status changes go through the
services (the merchant's portal, or the burst suspension), so they are audited."""

from django.contrib import admin

from apps.portal.admin_tools import ReadOnlyAdminMixin
from apps.terminals.models import Terminal, TerminalKey


class TerminalKeyInline(admin.TabularInline):
    model = TerminalKey
    extra = 0
    can_delete = False
    readonly_fields = ("public_key", "created_at", "expires_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Terminal)
class TerminalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("serial_number", "merchant", "shop", "status", "last_seen_at", "created_at")
    list_filter = ("status",)
    search_fields = ("serial_number", "public_id")
    readonly_fields = [f.name for f in Terminal._meta.fields if f.name != "activation_code_hash"]
    exclude = ("activation_code_hash",)
    inlines = [TerminalKeyInline]

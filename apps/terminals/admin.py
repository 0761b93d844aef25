"""Compliance's view of terminals: read-only. Status changes go through the
services (the merchant's portal, or the burst suspension), so they are audited."""

from django.contrib import admin

from apps.terminals.models import Terminal, TerminalKey


class TerminalKeyInline(admin.TabularInline):
    model = TerminalKey
    extra = 0
    can_delete = False
    readonly_fields = ("public_key", "created_at", "expires_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    list_display = ("serial_number", "merchant", "shop", "status", "last_seen_at", "created_at")
    list_filter = ("status",)
    search_fields = ("serial_number", "public_id")
    readonly_fields = [f.name for f in Terminal._meta.fields if f.name != "activation_code_hash"]
    exclude = ("activation_code_hash",)
    inlines = [TerminalKeyInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

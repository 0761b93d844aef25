"""Compliance's view of backups: the catalog (read-only), targets and the
policy (editable, audited), a "Back up now" button and legal holds."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.backups import services
from apps.backups.models import BackupPolicy, BackupReplica, BackupRun, BackupTarget, RestoreDrill


class _CompliancePermissions:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


class ReplicaInline(admin.TabularInline):
    model = BackupReplica
    extra = 0
    can_delete = False
    fields = (
        "target",
        "status",
        "key",
        "size_bytes",
        "sha256_read",
        "upload_ms",
        "verify_ms",
        "verified_at",
        "pruned_at",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BackupRun)
class BackupRunAdmin(_CompliancePermissions, admin.ModelAdmin):
    list_display = (
        "started_at",
        "status",
        "trigger",
        "engine",
        "size_bytes",
        "duration_ms",
        "legal_hold",
        "copies",
    )
    list_filter = ("status", "trigger", "legal_hold")
    readonly_fields = [f.name for f in BackupRun._meta.fields]
    inlines = [ReplicaInline]
    actions = ["place_legal_hold", "release_legal_hold"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("replicas__target")

    @admin.display(description=_("copies"))
    def copies(self, run: BackupRun) -> str:
        return ", ".join(f"{r.target.name}: {r.status}" for r in run.replicas.all())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "backup-now/",
                self.admin_site.admin_view(self.backup_now),
                name="backups_backuprun_backup_now",
            ),
            *super().get_urls(),
        ]

    def backup_now(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.is_staff:
            return HttpResponseRedirect(reverse("admin:index"))
        from apps.backups.tasks import backup_create

        actor = request.user.email
        transaction.on_commit(
            lambda: backup_create.delay(trigger=BackupRun.Trigger.MANUAL, actor=actor)
        )
        messages.success(request, gettext("Backup started; it appears in the catalog below."))
        return HttpResponseRedirect(reverse("admin:backups_backuprun_changelist"))

    @staticmethod
    def _legal_hold_set(request, queryset, *, hold: bool) -> int:
        runs = list(queryset)
        verb = "placed" if hold else "released"
        for run in runs:
            services.backup_legal_hold_set(
                run=run, hold=hold, reason=f"{verb} by {request.user.email}", actor=request.user
            )
        return len(runs)

    @admin.action(description=_("Place a legal hold (never pruned)"))
    def place_legal_hold(self, request, queryset):
        n = self._legal_hold_set(request, queryset, hold=True)
        messages.success(
            request,
            ngettext("Legal hold placed on %(n)s backup.", "Legal hold placed on %(n)s backups.", n)
            % {"n": n},
        )

    @admin.action(description=_("Release the legal hold"))
    def release_legal_hold(self, request, queryset):
        n = self._legal_hold_set(request, queryset, hold=False)
        messages.success(
            request,
            ngettext(
                "Legal hold released on %(n)s backup.", "Legal hold released on %(n)s backups.", n
            )
            % {"n": n},
        )


@admin.register(BackupTarget)
class BackupTargetAdmin(_CompliancePermissions, admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    list_display = (
        "name",
        "kind",
        "enabled",
        "priority",
        "healthy",
        "last_checked_at",
        "from_environment",
    )
    readonly_fields = ("from_environment", "healthy", "last_error", "last_checked_at")

    def has_delete_permission(self, request, obj=None):
        return False  # the catalog keeps pointing at its copies

    def has_add_permission(self, request):
        return request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff


@admin.register(BackupPolicy)
class BackupPolicyAdmin(_CompliancePermissions, admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    list_display = (
        "__str__",
        "enabled",
        "keep_daily",
        "keep_weekly",
        "keep_monthly",
        "max_age_hours",
        "drill_enabled",
    )
    readonly_fields = ("stale_alerted_at", "updated_at")

    def has_add_permission(self, request):
        return request.user.is_staff and not BackupPolicy.objects.exists()

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        services.backup_policy_update(policy=obj, changes=changes, actor=request.user)


@admin.register(RestoreDrill)
class RestoreDrillAdmin(_CompliancePermissions, admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    list_display = ("started_at", "status", "run", "duration_ms", "scratch_database")
    list_filter = ("status",)
    readonly_fields = [f.name for f in RestoreDrill._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

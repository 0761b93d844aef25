"""Compliance's risk desk in the admin: the review queue (claim, decide with
a reason, second approver), rules and lists (every change through the
audited services), decisions (read-only, with every hit), alerts and the
monitoring dashboard. Money moves only through apps.risk.services."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.portal.admin_tools import ReadOnlyAdminMixin
from apps.risk import selectors, services
from apps.risk.errors import RiskError
from apps.risk.models import (
    Alert,
    ListEntry,
    MonitorRun,
    RiskCase,
    RiskDecisionRecord,
    RuleConfig,
    RuleConfigVersion,
)
from apps.risk.rules import RULE_CODES, rule_defaults, rule_title

# --- rules -------------------------------------------------------------------


class RuleConfigForm(forms.ModelForm):
    rule_code = forms.ChoiceField(choices=[(c, f"{c} — {rule_title(c)}") for c in RULE_CODES])
    params = forms.JSONField(
        required=False,
        help_text=_(
            'Only the parameters to override, e.g. {"max_amount": 5000000}. Amounts in fen.'
        ),
    )
    change_reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = RuleConfig
        fields = ("rule_code", "scope", "mcc", "merchant", "mode", "params")

    def clean(self):
        data = super().clean()
        from apps.risk.services import _validated_params

        code = data.get("rule_code")
        if code:
            try:
                data["params"] = _validated_params(code, data.get("params") or {})
            except RiskError as exc:
                raise ValidationError({"params": str(exc)}) from exc
        return data


class RuleConfigVersionInline(admin.TabularInline):
    model = RuleConfigVersion
    fields = ("version", "mode", "params", "changed_at", "changed_by", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RuleConfig)
class RuleConfigAdmin(admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    form = RuleConfigForm
    list_display = (
        "rule_code",
        "scope",
        "mcc",
        "merchant",
        "mode",
        "version",
        "updated_at",
        "updated_by",
    )
    list_filter = ("scope", "mode", "rule_code")
    raw_id_fields = ("merchant",)
    readonly_fields = ("version", "updated_at", "updated_by", "defaults")
    inlines = [RuleConfigVersionInline]

    def get_fields(self, request, obj=None):
        return (
            "rule_code",
            "scope",
            "mcc",
            "merchant",
            "mode",
            "params",
            "change_reason",
            "defaults",
            "version",
        )

    @admin.display(description=_("Parameters in code (defaults)"))
    def defaults(self, obj):
        return (
            json.dumps(rule_defaults(obj.rule_code), ensure_ascii=False)
            if obj and obj.rule_code
            else "-"
        )

    def has_delete_permission(self, request, obj=None):
        return False  # a layer is turned off (mode: disabled), never erased

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = services.risk_rule_config_set(
            rule_code=data["rule_code"],
            scope=data["scope"],
            mcc=data.get("mcc") or "",
            merchant=data.get("merchant"),
            mode=data.get("mode") or "",
            params=data.get("params") or {},
            actor=request.user,
            reason=data["change_reason"],
            request=request,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()


# --- lists -------------------------------------------------------------------


class ListEntryForm(forms.ModelForm):
    skip_rules = forms.MultipleChoiceField(
        required=False,
        choices=[("*", _("* (every rule but the block lists)")), *[(c, c) for c in RULE_CODES]],
        help_text=_("Allow entries only: the rules to skip for this subject."),
    )

    class Meta:
        model = ListEntry
        fields = (
            "kind",
            "subject_type",
            "subject_id",
            "skip_rules",
            "reason",
            "expires_at",
            "source_case",
        )


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    form = ListEntryForm
    list_display = (
        "kind",
        "subject_type",
        "subject_id",
        "reason",
        "expires_at",
        "revoked_at",
        "source_case",
        "created_by",
    )
    list_filter = ("kind", "subject_type")
    search_fields = ("=subject_id", "reason")
    raw_id_fields = ("source_case",)
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        entry = services.risk_list_entry_add(
            kind=data["kind"],
            subject_type=data["subject_type"],
            subject_id=data["subject_id"],
            reason=data["reason"],
            expires_at=data.get("expires_at"),
            skip_rules=data.get("skip_rules") or [],
            source_case=data.get("source_case"),
            actor=request.user,
            request=request,
        )
        obj.pk = entry.pk
        obj.refresh_from_db()

    @admin.action(description=_("Revoke the selected entries"))
    def revoke(self, request, queryset):
        for entry in queryset.filter(revoked_at__isnull=True):
            services.risk_list_entry_revoke(entry=entry, actor=request.user, request=request)
        self.message_user(request, gettext("Revoked."))


# --- decisions ---------------------------------------------------------------


@admin.register(RiskDecisionRecord)
class RiskDecisionRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "outcome",
        "score",
        "reasons",
        "amount",
        "merchant",
        "payer_id",
        "terminal_id",
        "payment_outcome",
        "elapsed_ms",
    )
    list_filter = ("outcome", "payment_outcome")
    search_fields = ("=public_id", "=payment_public_id", "=payer_id")
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in RiskDecisionRecord._meta.fields]


# --- cases -------------------------------------------------------------------


def _decided_message(case: RiskCase) -> str:
    if case.status == RiskCase.Status.AWAITING_SECOND:
        return gettext("First approval recorded: a second approver decides this case.")
    return gettext("Case %(case)s: %(status)s.") % {
        "case": str(case.public_id)[:8],
        "status": case.get_status_display(),
    }


class DecideForm(forms.Form):
    reason = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    block_payer_days = forms.IntegerField(required=False, min_value=1, max_value=3650)
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(is_staff=True, is_active=True), required=False
    )


@admin.register(RiskCase)
class RiskCaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "kind",
        "status",
        "title",
        "merchant",
        "amount",
        "assigned_to",
        "locked_by",
        "expires_at",
    )
    list_filter = ("status", "kind")
    ordering = ("-created_at", "-id")  # the riskcase_queue index serves the status filter
    search_fields = ("=public_id", "=payment_public_id", "title")
    list_select_related = ("merchant", "assigned_to", "locked_by")

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "next/",
                self.admin_site.admin_view(self.review_next_view),
                name="{}_{}_next".format(*info),
            ),
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="{}_{}_dashboard".format(*info),
            ),
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="{}_{}_review".format(*info),
            ),
            *super().get_urls(),
        ]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:risk_riskcase_review", args=[object_id]))

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied
        case = get_object_or_404(
            RiskCase.objects.select_related("merchant", "decision", "assigned_to", "locked_by"),
            pk=pk,
        )
        form = DecideForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            action = request.POST.get("action", "")
            reason = form.cleaned_data.get("reason") or ""
            try:
                if action == "claim":
                    services.risk_case_claim(case=case, reviewer=request.user, request=request)
                elif action == "unlock":
                    services.risk_case_release_lock(
                        case=case, reviewer=request.user, request=request
                    )
                elif action == "assign" and form.cleaned_data.get("assignee"):
                    services.risk_case_assign(
                        case=case,
                        assignee=form.cleaned_data["assignee"],
                        actor=request.user,
                        request=request,
                    )
                elif action == "approve":
                    services.risk_case_approve(
                        case=case, reviewer=request.user, reason=reason, request=request
                    )
                elif action == "decline":
                    services.risk_case_decline(
                        case=case,
                        reviewer=request.user,
                        reason=reason,
                        block_payer_days=form.cleaned_data.get("block_payer_days"),
                        request=request,
                    )
                elif action == "close":
                    services.risk_case_close(
                        case=case, reviewer=request.user, reason=reason, request=request
                    )
                else:
                    raise PermissionDenied
            except RiskError as exc:
                if isinstance(exc, services.ReasonRequired):
                    form.add_error("reason", str(exc))
                else:
                    messages.error(request, str(exc))
            else:
                if action in ("approve", "decline", "close"):
                    case.refresh_from_db()
                    return self._to_next(request, _decided_message(case))
                messages.success(request, gettext("Done: %(action)s.") % {"action": action})
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Review: %(title)s") % {"title": case.title},
            "case": case,
            "form": form,
            "opts": self.model._meta,
            "hits": (case.decision.hits if case.decision else []),
            "decision": case.decision,
            "detail_json": json.dumps(case.detail, ensure_ascii=False, indent=2, default=str),
            "mine": case.locked_by_id == request.user.pk,
        }
        return TemplateResponse(request, "admin/risk/case_review.html", context)

    def _to_next(self, request: HttpRequest, done: str = "") -> HttpResponseRedirect:
        """Opens the next case waiting for this reviewer, or goes back to the
        (empty) queue of open cases, saying what was just done."""
        following = selectors.risk_case_next_for_reviewer(reviewer=request.user)
        if following is None:
            note = gettext("The queue is empty.")
            messages.success(request, f"{done} {note}".strip())
            changelist = reverse("admin:risk_riskcase_changelist")
            return HttpResponseRedirect(f"{changelist}?status__exact=open")
        if done:
            messages.success(request, f"{done} {gettext('Next in the queue:')} {following}")
        return HttpResponseRedirect(reverse("admin:risk_riskcase_review", args=[following.pk]))

    def review_next_view(self, request: HttpRequest) -> HttpResponse:
        return self._to_next(request)

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Risk dashboard"),
            "opts": self.model._meta,
            **selectors.risk_dashboard(),
        }
        return TemplateResponse(request, "admin/risk/dashboard.html", context)


# --- alerts and monitors ---------------------------------------------------------


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "last_seen_at",
        "severity",
        "status",
        "kind",
        "title",
        "occurrences",
        "merchant",
        "emailed_at",
    )
    list_filter = ("status", "severity", "kind")
    ordering = ("-last_seen_at", "-id")  # the alert_queue index serves the status filter
    search_fields = ("title", "dedup_key")
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ["acknowledge", "resolve"]

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff  # for the actions; every field is read-only

    @admin.action(description=_("Acknowledge"))
    def acknowledge(self, request, queryset):
        for alert in queryset:
            services.alert_acknowledge(alert=alert, actor=request.user, request=request)

    @admin.action(description=_("Resolve"))
    def resolve(self, request, queryset):
        for alert in queryset:
            services.alert_resolve(alert=alert, actor=request.user, request=request)


@admin.register(MonitorRun)
class MonitorRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "started_at", "finished_at", "ok", "stats")
    list_filter = ("name", "ok")
    readonly_fields = [f.name for f in MonitorRun._meta.fields]

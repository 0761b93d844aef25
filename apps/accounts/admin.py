"""Compliance's view of accounts: review queues of submitted KYC and KYB with
approve/reject decisions that need a reason, PII masked unless a reviewer
reveals it (each reveal audited), and the status history of every review."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.accounts import selectors, services
from apps.accounts.crypto import decrypt_bytes
from apps.accounts.errors import AccountsError
from apps.accounts.masking import mask_name, mask_phone, mask_tail
from apps.accounts.models import (
    KybApplication,
    KycApplication,
    Membership,
    Merchant,
    Payer,
    PaymentPassword,
    ReviewStatusChange,
    Shop,
    User,
)
from apps.accounts.models.identity import RejectionReason


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    ordering = ("email",)
    list_display = (
        "email",
        "display_name",
        "is_staff",
        "is_active",
        "login_locked_until",
        "date_joined",
    )
    search_fields = ("email", "display_name")
    readonly_fields = (
        "public_id",
        "date_joined",
        "last_login",
        "failed_login_count",
        "login_locked_until",
    )
    fieldsets = (
        (None, {"fields": ("public_id", "email", "password", "display_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (
            _("Sign-in"),
            {"fields": ("failed_login_count", "login_locked_until", "last_login", "date_joined")},
        ),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["unlock_login"]

    @admin.action(description=_("Lift the login lockout"))
    def unlock_login(self, request: HttpRequest, queryset: Any) -> None:
        for user in queryset:
            services.login_unlock(user=user, actor=request.user, request=request)
        n = queryset.count()
        self.message_user(
            request,
            ngettext("Unlocked %(n)s account.", "Unlocked %(n)s accounts.", n) % {"n": n},
        )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


class ShopInline(admin.TabularInline):
    model = Shop
    extra = 0
    fields = ("name", "address", "latitude", "longitude", "opens_at", "closes_at")


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "mcc", "discount_rate_bp", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "=public_id")
    # Status follows the KYB review (kyb_approve) and is never edited by hand:
    # an ACTIVE merchant is one whose KYB was approved.
    readonly_fields = ("public_id", "status", "created_at")
    inlines = [MembershipInline, ShopInline]
    show_full_result_count = False


# --- review queues -------------------------------------------------------------


class ApproveForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label=_("Reason for approval")
    )


class ApprovePayerForm(ApproveForm):
    account_class = forms.ChoiceField(
        choices=[
            (c, label)
            for c, label in Payer.AccountClass.choices
            if c != Payer.AccountClass.UNVERIFIED
        ],
        label=_("Account class"),
    )


class RejectForm(forms.Form):
    reason_code = forms.ChoiceField(choices=RejectionReason.choices, label=_("Reason"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label=_("Explanation for the applicant")
    )
    may_resubmit = forms.BooleanField(
        required=False, initial=True, label=_("The applicant may submit again")
    )


class UnlockForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label=_("Reason for the unlock")
    )


class HistoryInline(admin.TabularInline):
    model = ReviewStatusChange
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReviewAdmin(admin.ModelAdmin):
    """Shared review behaviour: read-only records, a submitted-first queue
    that loads the next application after each decision, the approve and
    reject pages (a reason is mandatory; the services audit) and the audited
    reveal. Subclasses name their queue and call their services."""

    change_form_template = "accounts/admin/review_change_form.html"
    change_list_template = "accounts/admin/review_change_list.html"
    list_filter = ("status",)
    ordering = ("submitted_at", "pk")
    inlines = [HistoryInline]
    show_full_result_count = False
    queue_label = ""  # "KYC" or "KYB", in the decision pages' titles
    reveal_title = _("Clear data")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing and the decision pages only; nothing is edited in place.
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_staff

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        # The queue: submitted applications, oldest first, unless filtered.
        if not request.GET and request.method == "GET":
            return HttpResponseRedirect(f"{request.path}?status__exact=submitted")
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("next/", wrap(self.review_next_view), name="{}_{}_next".format(*info)),
            path(
                "<path:object_id>/approve/",
                wrap(self.approve_view),
                name="{}_{}_approve".format(*info),
            ),
            path(
                "<path:object_id>/reject/",
                wrap(self.reject_view),
                name="{}_{}_reject".format(*info),
            ),
            path(
                "<path:object_id>/reveal/",
                wrap(self.reveal_view),
                name="{}_{}_reveal".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("duplicate"))
    def duplicate_flag(self, obj: Any) -> str:
        return gettext("⚠ duplicate") if obj.duplicate_of_id else ""

    # --- what each queue decides with ------------------------------------------

    def item_label(self, obj: Any) -> str:
        return f"{self.queue_label} {str(obj.public_id)[:8]}"

    def approve_form_class(self, obj: Any) -> type[forms.Form]:
        return ApproveForm

    def approve(self, request: HttpRequest, obj: Any, data: dict) -> None:
        raise NotImplementedError

    def reject(self, request: HttpRequest, obj: Any, data: dict) -> None:
        raise NotImplementedError

    def reveal_values(self, obj: Any) -> list[tuple[str, Any]]:
        raise NotImplementedError

    # --- the queue --------------------------------------------------------------

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def _queue_url(self) -> str:
        return f"{self._url('changelist')}?status__exact=submitted"

    def _to_next(self, request: HttpRequest, done: str = "") -> HttpResponseRedirect:
        """Opens the oldest application still waiting, or goes back to the
        (empty) queue, saying what was just done."""
        following = selectors.review_queue_next(self.model)
        if following is None:
            note = gettext("The queue is empty.")
            self.message_user(request, f"{done} {note}".strip(), messages.SUCCESS)
            return HttpResponseRedirect(self._queue_url())
        if done:
            self.message_user(
                request,
                f"{done} {gettext('Next in the queue:')} {self.item_label(following)}",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._url("change", following.pk))

    def review_next_view(self, request: HttpRequest) -> HttpResponse:
        return self._to_next(request)

    # --- decisions --------------------------------------------------------------

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = get_object_or_404(self.model, pk=object_id)
        title = gettext("Approve %(queue)s") % {"queue": self.queue_label}
        done = gettext("%(application)s approved.") % {"application": self.item_label(obj)}
        return self._decision(request, obj, self.approve_form_class(obj), title, done, self.approve)

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = get_object_or_404(self.model, pk=object_id)
        title = gettext("Reject %(queue)s") % {"queue": self.queue_label}
        done = gettext("%(application)s rejected.") % {"application": self.item_label(obj)}
        return self._decision(request, obj, RejectForm, title, done, self.reject)

    def _decision(
        self,
        request: HttpRequest,
        obj: Any,
        form_class: type[forms.Form],
        title: str,
        done: str,
        decide: Callable[[HttpRequest, Any, dict], None],
    ) -> HttpResponse:
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                decide(request, obj, form.cleaned_data)
            except AccountsError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                return self._to_next(request, done)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "form": form,
            "title": title,
        }
        return TemplateResponse(request, "accounts/admin/decision.html", context)

    def reveal_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = get_object_or_404(self.model, pk=object_id)
        if request.method != "POST":
            # Revealing is an act that is audited: only on an explicit POST.
            return HttpResponseRedirect(self._url("change", obj.pk))
        services.pii_reveal_record(actor=request.user, target=obj, request=request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": self.reveal_title,
            "values": self.reveal_values(obj),
            "documents": _documents_as_data_urls(obj.documents.all()),
        }
        response = TemplateResponse(request, "accounts/admin/reveal.html", context)
        response["Cache-Control"] = "no-store"
        return response


def _documents_as_data_urls(documents: Any) -> list[tuple[str, str]]:
    return [
        (
            doc.get_kind_display(),
            f"data:{doc.content_type};base64,{base64.b64encode(decrypt_bytes(doc.ciphertext)).decode()}",
        )
        for doc in documents
    ]


@admin.register(KycApplication)
class KycApplicationAdmin(ReviewAdmin):
    queue_label = "KYC"
    reveal_title = _("Clear PII")
    list_display = (
        "short_id",
        "subject",
        "masked_name",
        "masked_id_number",
        "status",
        "duplicate_flag",
        "submitted_at",
    )
    list_filter = ("status", "subject", ("duplicate_of", admin.EmptyFieldListFilter))
    fields = (
        "public_id",
        "subject",
        "user",
        "merchant",
        "masked_name",
        "masked_id_number",
        "masked_phone",
        "status",
        "account_class",
        "rejection_reason",
        "decision_note",
        "may_resubmit",
        "duplicate_link",
        "document_list",
        "submitted_at",
        "decided_at",
        "decided_by",
        "expires_at",
    )
    readonly_fields = fields
    search_fields = ("=public_id",)

    @admin.display(description=_("id"))
    def short_id(self, obj: KycApplication) -> str:
        return str(obj.public_id)[:8]

    @admin.display(description=_("legal name"))
    def masked_name(self, obj: KycApplication) -> str:
        return mask_name(obj.legal_name)

    @admin.display(description=_("ID number"))
    def masked_id_number(self, obj: KycApplication) -> str:
        return mask_tail(obj.id_number)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: KycApplication) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("same ID number as"))
    def duplicate_link(self, obj: KycApplication) -> str:
        if not obj.duplicate_of_id:
            return "—"
        url = reverse("admin:accounts_kycapplication_change", args=[obj.duplicate_of_id])
        return format_html('<a href="{}">KYC {}</a>', url, str(obj.duplicate_of.public_id)[:8])

    @admin.display(description=_("documents"))
    def document_list(self, obj: KycApplication) -> str:
        return (
            ", ".join(f"{d.get_kind_display()} ({d.size // 1024} KB)" for d in obj.documents.all())
            or "—"
        )

    def approve_form_class(self, obj: KycApplication) -> type[forms.Form]:
        return ApprovePayerForm if obj.subject == KycApplication.Subject.PAYER else ApproveForm

    def approve(self, request: HttpRequest, obj: KycApplication, data: dict) -> None:
        services.kyc_approve(
            kyc=obj,
            actor=request.user,
            reason=data["reason"],
            account_class=data.get("account_class", ""),
            request=request,
        )

    def reject(self, request: HttpRequest, obj: KycApplication, data: dict) -> None:
        services.kyc_reject(
            kyc=obj,
            actor=request.user,
            reason_code=data["reason_code"],
            note=data["reason"],
            may_resubmit=data["may_resubmit"],
            request=request,
        )

    def reveal_values(self, obj: KycApplication) -> list[tuple[str, Any]]:
        return [
            (gettext("Legal name"), obj.legal_name),
            (gettext("ID number"), obj.id_number),
            (gettext("Birth date"), obj.birth_date),
            (gettext("Phone"), obj.phone),
        ]


class BeneficialOwnerInline(admin.TabularInline):
    from apps.accounts.models import BeneficialOwner

    model = BeneficialOwner
    extra = 0
    can_delete = False
    fields = ("kyc", "share_percent")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KybApplication)
class KybApplicationAdmin(ReviewAdmin):
    queue_label = "KYB"
    reveal_title = _("Clear business data")
    list_display = (
        "company_name",
        "merchant",
        "masked_uscc",
        "mcc",
        "legal_rep_status",
        "status",
        "duplicate_flag",
        "submitted_at",
    )
    list_filter = ("status", ("duplicate_of", admin.EmptyFieldListFilter))
    fields = (
        "public_id",
        "merchant",
        "company_name",
        "masked_uscc",
        "mcc",
        "registered_address",
        "legal_rep_link",
        "legal_rep_status",
        "status",
        "rejection_reason",
        "decision_note",
        "may_resubmit",
        "duplicate_of",
        "document_list",
        "submitted_by",
        "submitted_at",
        "decided_at",
        "decided_by",
    )
    readonly_fields = fields
    inlines = [BeneficialOwnerInline, HistoryInline]
    search_fields = ("company_name", "=public_id")

    @admin.display(description=_("credit code"))
    def masked_uscc(self, obj: KybApplication) -> str:
        return mask_tail(obj.uscc)

    @admin.display(description=_("legal representative's KYC"))
    def legal_rep_status(self, obj: KybApplication) -> str:
        return obj.legal_rep.get_status_display()

    @admin.display(description=_("legal representative"))
    def legal_rep_link(self, obj: KybApplication) -> str:
        url = reverse("admin:accounts_kycapplication_change", args=[obj.legal_rep_id])
        return format_html(
            '<a href="{}">{} (KYC {})</a>',
            url,
            mask_name(obj.legal_rep.legal_name),
            str(obj.legal_rep.public_id)[:8],
        )

    @admin.display(description=_("documents"))
    def document_list(self, obj: KybApplication) -> str:
        return (
            ", ".join(f"{d.get_kind_display()} ({d.size // 1024} KB)" for d in obj.documents.all())
            or "—"
        )

    def item_label(self, obj: KybApplication) -> str:
        return f"KYB {obj.company_name}"

    def approve(self, request: HttpRequest, obj: KybApplication, data: dict) -> None:
        services.kyb_approve(kyb=obj, actor=request.user, reason=data["reason"], request=request)

    def reject(self, request: HttpRequest, obj: KybApplication, data: dict) -> None:
        services.kyb_reject(
            kyb=obj,
            actor=request.user,
            reason_code=data["reason_code"],
            note=data["reason"],
            may_resubmit=data["may_resubmit"],
            request=request,
        )

    def reveal_values(self, obj: KybApplication) -> list[tuple[str, Any]]:
        return [(gettext("Unified social credit code"), obj.uscc)]


@admin.register(Payer)
class PayerAdmin(admin.ModelAdmin):
    show_full_result_count = False  # no COUNT(*) of the whole table per page
    list_display = ("public_id", "user", "account_class", "created_at")
    list_filter = ("account_class",)
    search_fields = ("=public_id", "user__email")
    readonly_fields = ("public_id", "user", "account_class", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaymentPassword)
class PaymentPasswordAdmin(admin.ModelAdmin):
    """Locks only; the hash itself is never shown."""

    show_full_result_count = False  # no COUNT(*) of the whole table per page

    list_display = ("payer", "set_at", "failed_attempts", "locked_until")
    fields = ("payer", "set_at", "failed_attempts", "locked_until")
    readonly_fields = fields
    change_form_template = "accounts/admin/payment_password_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_staff

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/unlock/",
                self.admin_site.admin_view(self.unlock_view),
                name="accounts_paymentpassword_unlock",
            ),
            *super().get_urls(),
        ]

    def unlock_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = get_object_or_404(PaymentPassword, pk=object_id)
        form = UnlockForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.payment_password_unlock(
                payer=obj.payer,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                request=request,
            )
            self.message_user(request, gettext("Payments unlocked."), messages.SUCCESS)
            return HttpResponseRedirect(
                reverse("admin:accounts_paymentpassword_change", args=[obj.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "form": form,
            "title": gettext("Unlock payments"),
        }
        return TemplateResponse(request, "accounts/admin/decision.html", context)

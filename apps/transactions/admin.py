"""Compliance's view of the ledger: read-only browsing of accounts and
entries, and one write, a wallet top-up with a reason (through the service)."""

from __future__ import annotations

import decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Payer
from apps.core.money import CURRENCY_EXPONENT, Money
from apps.portal.admin_tools import ReadOnlyAdminMixin
from apps.transactions.errors import LedgerError
from apps.transactions.models import (
    BatchClose,
    JournalEntry,
    LedgerAccount,
    Payment,
    PaymentTransition,
    Posting,
    Refund,
    Reversal,
)
from apps.transactions.services import wallet_top_up


class TopUpForm(forms.Form):
    payer = forms.UUIDField(label=_("Payer public ID"))
    amount = forms.DecimalField(
        label=_("Amount (yuan)"), min_value=decimal.Decimal("0.01"), max_digits=14, decimal_places=2
    )
    currency = forms.ChoiceField(
        label=_("Currency"), choices=[(c, c) for c in CURRENCY_EXPONENT], initial="CNY"
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_payer(self) -> Payer:
        try:
            return Payer.objects.get(public_id=self.cleaned_data["payer"])
        except Payer.DoesNotExist:
            raise ValidationError(gettext("No payer with this public ID.")) from None

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if len(reason) < 5:
            raise ValidationError(gettext("Say why this top-up is posted."))
        return reason

    def money(self) -> Money:
        currency = self.cleaned_data["currency"]
        # Decimal to minor units exactly (2 decimal places are validated).
        minor = self.cleaned_data["amount"].scaleb(CURRENCY_EXPONENT[currency])
        return Money(int(minor), currency)


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "public_id",
        "kind",
        "payer",
        "merchant",
        "currency",
        "balance_display",
        "frozen",
        "created_at",
    )
    list_filter = ("kind", "currency", "frozen")
    search_fields = ("=public_id", "=payer__public_id", "=merchant__public_id", "merchant__name")
    list_select_related = ("payer", "merchant")
    readonly_fields = (
        "public_id",
        "kind",
        "payer",
        "merchant",
        "currency",
        "balance_display",
        "frozen",
        "created_at",
    )
    exclude = ("balance",)

    @admin.display(description=_("balance"))
    def balance_display(self, obj: LedgerAccount) -> str:
        return obj.balance_money.format()

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def get_urls(self):
        urls = [
            path(
                "top-up/",
                self.admin_site.admin_view(self.top_up_view),
                name="transactions_ledgeraccount_top_up",
            )
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "top_up_url": reverse("admin:transactions_ledgeraccount_top_up"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def top_up_view(self, request: HttpRequest) -> HttpResponse:
        """Compliance posts a top-up (simulated bank funding) with a reason."""
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        form = TopUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = wallet_top_up(
                    payer=form.cleaned_data["payer"],
                    amount=form.money(),
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    request=request,
                )
            except (LedgerError, ValueError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    gettext("Top-up %(amount)s posted (entry %(entry)s).")
                    % {"amount": form.money().format(), "entry": entry.public_id},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:transactions_journalentry_change", args=[entry.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Wallet top-up"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/transactions/top_up.html", context)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "kind",
        "currency",
        "merchant",
        "event_type",
        "event_id",
        "public_id",
    )
    list_filter = ("kind", "currency")
    search_fields = ("=public_id", "=event_id", "=idempotency_key", "=merchant__public_id")
    list_select_related = ("merchant",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "public_id", "kind", "currency", "merchant", "event_type", "event_id",
        "idempotency_key", "original", "memo", "created_at",
    )  # fmt: skip
    inlines = [PostingInline]


class PaymentTransitionInline(admin.TabularInline):
    model = PaymentTransition
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "reason", "actor")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Payment search across all merchants (compliance): by payment id,
    idempotency key or merchant name; read-only, no full counts (millions
    of rows), related rows as raw ids (no giant select boxes)."""

    list_display = ("public_id", "created_at", "merchant", "amount", "currency", "status")
    list_filter = ("status",)
    search_fields = ("=public_id", "=idempotency_key", "merchant__name")
    raw_id_fields = ("merchant", "terminal", "shop", "operator", "payer")
    list_select_related = ("merchant",)
    date_hierarchy = None
    ordering = ("-created_at", "-id")
    inlines = [PaymentTransitionInline]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("public_id", "created_at", "merchant", "amount", "payment")
    search_fields = ("=public_id", "=payment__public_id")
    raw_id_fields = ("merchant", "payment", "terminal", "approved_by")
    list_select_related = ("merchant", "payment")
    ordering = ("-created_at", "-id")


@admin.register(Reversal)
class ReversalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("public_id", "created_at", "merchant", "original_key", "outcome")
    search_fields = ("=public_id", "=original_key")
    raw_id_fields = ("merchant", "terminal", "payment")
    list_select_related = ("merchant",)
    ordering = ("-created_at", "-id")


@admin.register(BatchClose)
class BatchCloseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("public_id", "period_end", "merchant", "terminal", "matched")
    list_filter = ("matched",)
    raw_id_fields = ("merchant", "terminal")
    list_select_related = ("merchant", "terminal")
    ordering = ("-period_end", "-id")

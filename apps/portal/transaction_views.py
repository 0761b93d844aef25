"""Portal pages for transactions: the list (filters in the URL, keyset
pages), a payment's detail (ledger postings, risk decision, masked payer),
refunds (owner/manager, OTP step-up), settlement statements with their CSV,
and withdrawals (owner, OTP step-up). UI only: reads through
apps.transactions.selectors, writes through its services."""

from __future__ import annotations

import csv
import uuid
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from apps.accounts.stepup import stepup_is_fresh, stepup_redirect
from apps.core.money import Money
from apps.portal.views import PortalView
from apps.terminals.models import Terminal
from apps.transactions.errors import LedgerError, PaymentError
from apps.transactions.models import PaymentStatus
from apps.transactions.selectors import (
    PaymentFilters,
    ledger_balance_for_merchant,
    payer_masked,
    payment_entries,
    payment_for_merchant,
    payment_list_for_merchant,
    statement_days,
)
from apps.transactions.services import merchant_withdraw, payment_refund_by_user

PAGE_SIZE = 50


def _yuan_to_fen(value: Decimal) -> int:
    return int(value.scaleb(2))


class PaymentFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label=gettext_lazy("From"))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"))
    terminal = forms.TypedChoiceField(required=False, label=gettext_lazy("Terminal"), coerce=str)
    status = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Status"),
        choices=[("", gettext_lazy("any")), *PaymentStatus.choices],
    )
    amount_min = forms.DecimalField(
        required=False, min_value=0, decimal_places=2, label=gettext_lazy("Min ¥")
    )
    amount_max = forms.DecimalField(
        required=False, min_value=0, decimal_places=2, label=gettext_lazy("Max ¥")
    )

    def __init__(self, *args: Any, terminals: list[Terminal], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["terminal"].choices = [
            ("", _("any")),
            *((str(t.public_id), t.serial_number) for t in terminals),
        ]

    def filters(self) -> PaymentFilters:
        data = self.cleaned_data
        return PaymentFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            terminal=uuid.UUID(data["terminal"]) if data.get("terminal") else None,
            status=data.get("status") or "",
            amount_min=_yuan_to_fen(data["amount_min"])
            if data.get("amount_min") is not None
            else None,
            amount_max=_yuan_to_fen(data["amount_max"])
            if data.get("amount_max") is not None
            else None,
        )


class TransactionListView(PortalView, View):
    capability = "view_transactions"

    def get(self, request: HttpRequest) -> HttpResponse:
        merchant = request.merchant  # type: ignore[attr-defined]
        terminals = list(Terminal.objects.for_merchant(merchant).order_by("serial_number"))
        form = PaymentFilterForm(request.GET or None, terminals=terminals)
        filters = form.filters() if form.is_bound and form.is_valid() else PaymentFilters()
        payments, next_cursor = payment_list_for_merchant(
            merchant=merchant, filters=filters, after=request.GET.get("after", ""), limit=PAGE_SIZE
        )
        next_query = None
        if next_cursor:
            query = request.GET.copy()
            query["after"] = next_cursor
            next_query = query.urlencode()
        rows = [(p, payer_masked(p.payer)) for p in payments]
        return render(
            request,
            "portal/transactions/list.html",
            {
                "form": form,
                "rows": rows,
                "next_query": next_query,
                "is_first": not request.GET.get("after"),
            },
        )


class TransactionDetailView(PortalView, View):
    capability = "view_transactions"

    def get(self, request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
        payment = payment_for_merchant(merchant=request.merchant, public_id=public_id)  # type: ignore[attr-defined]
        if payment is None:
            raise Http404
        decision = None
        if payment.risk_decision_public_id:
            from apps.risk.models import RiskDecisionRecord

            decision = (
                RiskDecisionRecord.objects.for_merchant(payment.merchant)
                .filter(public_id=payment.risk_decision_public_id)
                .first()
            )
        return render(
            request,
            "portal/transactions/detail.html",
            {
                "payment": payment,
                "payer": payer_masked(payment.payer),
                "entries": payment_entries(payment),
                "decision": decision,
                "refunds": list(payment.refunds.order_by("created_at")),
                "transitions": [
                    (
                        t.created_at,
                        PaymentStatus(t.from_status).label if t.from_status else "—",
                        PaymentStatus(t.to_status).label,
                        t.reason,
                    )
                    for t in payment.transitions.order_by("id")
                ],
                "can_refund": request.membership.can("refund") and payment.refundable > 0,  # type: ignore[attr-defined]
                "refundable": Money(payment.refundable, payment.currency),
            },
        )


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), decimal_places=2, max_digits=14, label=gettext_lazy("Amount (¥)")
    )
    reason = forms.CharField(max_length=200, label=gettext_lazy("Reason"))
    form_key = forms.CharField(widget=forms.HiddenInput)


class TransactionRefundView(PortalView, View):
    """Owner or manager, with a fresh OTP step-up. Another merchant's
    payment is a 404 before anything else (even before the step-up)."""

    capability = "refund"

    def _payment(self, request: HttpRequest, public_id: uuid.UUID) -> Any:
        payment = payment_for_merchant(merchant=request.merchant, public_id=public_id)  # type: ignore[attr-defined]
        if payment is None:
            raise Http404
        return payment

    def get(self, request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
        payment = self._payment(request, public_id)
        if not stepup_is_fresh(request):
            return stepup_redirect(request)
        form = RefundForm(initial={"form_key": uuid.uuid4().hex})
        return self._render(request, payment, form)

    def post(self, request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
        payment = self._payment(request, public_id)
        if not stepup_is_fresh(request):
            return stepup_redirect(request)
        form = RefundForm(request.POST)
        if form.is_valid():
            try:
                payment_refund_by_user(
                    payment=payment,
                    amount=_yuan_to_fen(form.cleaned_data["amount"]),
                    reason=form.cleaned_data["reason"],
                    membership=request.membership,  # type: ignore[attr-defined]
                    form_key=form.cleaned_data["form_key"],
                    request=request,
                )
            except PaymentError as exc:
                form.add_error(
                    "amount" if exc.field == "amount" or exc.code.startswith("refund") else None,
                    exc.message,
                )
            else:
                messages.success(request, _("Refund made."))
                return redirect("portal:transaction-detail", public_id=payment.public_id)
        return self._render(request, payment, form)

    def _render(self, request: HttpRequest, payment: Any, form: RefundForm) -> HttpResponse:
        return render(
            request,
            "portal/transactions/refund.html",
            {
                "payment": payment,
                "form": form,
                "refundable": Money(payment.refundable, payment.currency),
            },
        )


class StatementRangeForm(forms.Form):
    date_from = forms.DateField(required=False, label=gettext_lazy("From"))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"))

    MAX_DAYS = 366

    def range(self) -> tuple[date, date]:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        date_to = data.get("date_to") or today
        date_from = data.get("date_from") or date_to - timedelta(days=29)
        if date_from > date_to:
            date_from, date_to = date_to, date_from
        return max(date_from, date_to - timedelta(days=self.MAX_DAYS)), date_to


class StatementListView(PortalView, View):
    capability = "view_statements"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = StatementRangeForm(request.GET or None)
        date_from, date_to = form.range()
        days = statement_days(merchant=request.merchant, date_from=date_from, date_to=date_to)  # type: ignore[attr-defined]
        csv_url = reverse("portal:statement-csv") + f"?date_from={date_from}&date_to={date_to}"
        return render(
            request,
            "portal/transactions/statements.html",
            {
                "form": form,
                "days": days,
                "csv_url": csv_url,
                "date_from": date_from,
                "date_to": date_to,
            },
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


class StatementCsvView(PortalView, View):
    """Streams the statement rows (memory stays flat over a long range)."""

    capability = "view_statements"

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        date_from, date_to = StatementRangeForm(request.GET or None).range()
        merchant = request.merchant  # type: ignore[attr-defined]
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(
                [
                    "date",
                    "currency",
                    "payments",
                    "gross",
                    "fees",
                    "refunds",
                    "reversals",
                    "net",
                    "withdrawals",
                ]
            )
            day = date_from
            while day <= date_to:
                # A month at a time: a year's range never sits in memory.
                chunk_end = min(day + timedelta(days=30), date_to)
                for s in reversed(
                    statement_days(merchant=merchant, date_from=day, date_to=chunk_end)
                ):
                    yield writer.writerow(
                        [
                            s.day.isoformat(),
                            s.currency,
                            s.payments,
                            *(
                                f"{Decimal(getattr(s, name)).scaleb(-2):.2f}"
                                for name in (
                                    "gross",
                                    "fees",
                                    "refunds",
                                    "reversals",
                                    "net",
                                    "withdrawals",
                                )
                            ),
                        ]
                    )
                day = chunk_end + timedelta(days=1)

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="statement-{merchant.public_id}-{date_from}-{date_to}.csv"'
        )
        return response


class WithdrawForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), decimal_places=2, max_digits=14, label=gettext_lazy("Amount (¥)")
    )
    form_key = forms.CharField(widget=forms.HiddenInput)


class WithdrawView(PortalView, View):
    """The owner pays settlement balance out to the merchant's bank account
    (OTP step-up). The form's one-time key makes a double submit pay once."""

    capability = "withdraw"

    def get(self, request: HttpRequest) -> HttpResponse:
        if not stepup_is_fresh(request):
            return stepup_redirect(request)
        return self._render(request, WithdrawForm(initial={"form_key": uuid.uuid4().hex}))

    def post(self, request: HttpRequest) -> HttpResponse:
        if not stepup_is_fresh(request):
            return stepup_redirect(request)
        form = WithdrawForm(request.POST)
        if form.is_valid():
            try:
                merchant_withdraw(
                    merchant=request.merchant,  # type: ignore[attr-defined]
                    amount=Money(_yuan_to_fen(form.cleaned_data["amount"])),
                    actor=request.user,
                    idempotency_key=f"portal-withdraw:{form.cleaned_data['form_key']}",
                    request=request,
                )
            except LedgerError as exc:
                messages_by_code = {
                    "insufficient_funds": _("The settlement balance is lower than this amount."),
                    "account_frozen": _("The settlement account is frozen; contact compliance."),
                    "ledger_duplicate_event": _("This withdrawal was already made."),
                }
                form.add_error("amount", messages_by_code.get(exc.code, str(exc)))
            except (InvalidOperation, ValueError) as exc:
                form.add_error("amount", str(exc))
            else:
                messages.success(request, _("Withdrawal sent to your bank account."))
                return redirect("portal:withdraw")
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: WithdrawForm) -> HttpResponse:
        balance = ledger_balance_for_merchant(merchant=request.merchant)  # type: ignore[attr-defined]
        return render(
            request, "portal/transactions/withdraw.html", {"form": form, "balance": balance}
        )

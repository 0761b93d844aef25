"""Payments in the terminal API (/api/v1/terminal/payments, refunds,
reversals, batches) and the payer's balance and history in the wallet API.
Thin: parse, call one service, answer. Each POST needs an Idempotency-Key;
a stored answer comes back with `Idempotent-Replayed: true`."""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.auth import IsPayer, WalletTokenAuthentication
from apps.core.api import ApiError
from apps.terminals.api.auth import terminal_replay_refuse
from apps.terminals.api.base import TerminalAPIView
from apps.transactions import selectors
from apps.transactions.errors import RequestReplayed
from apps.transactions.models import Payment
from apps.transactions.services import (
    Answer,
    batch_close,
    payment_answer,
    payment_confirm,
    payment_create,
    payment_refund,
    payment_reverse,
    request_hash,
)


class PaymentInput(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1, help_text="fen")
    currency = serializers.CharField(max_length=3, default="CNY")
    payment_code = serializers.CharField(max_length=32)
    operator_id = serializers.UUIDField()
    latitude = serializers.DecimalField(
        max_digits=9, decimal_places=6, required=False, allow_null=True
    )
    longitude = serializers.DecimalField(
        max_digits=10, decimal_places=6, required=False, allow_null=True
    )


class ConfirmInput(serializers.Serializer):
    password_sealed = serializers.CharField(max_length=1024)


class RefundInput(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1, help_text="fen")
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    supervisor_id = serializers.UUIDField()
    supervisor_pin_sealed = serializers.CharField(max_length=1024)


class ReversalInput(serializers.Serializer):
    original_idempotency_key = serializers.CharField(max_length=255)


class BatchCloseInput(serializers.Serializer):
    sales_count = serializers.IntegerField(min_value=0)
    sales_total = serializers.IntegerField(min_value=0)
    refund_count = serializers.IntegerField(min_value=0, default=0)
    refund_total = serializers.IntegerField(min_value=0, default=0)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class IdempotentTerminalView(TerminalAPIView):
    """Times the stages (Server-Timing: sig = authentication, risk, writes,
    total) and answers a service's Answer. Its service keeps the request's
    nonce in the idempotency record (the nonce's durable record)."""

    nonce_kept_by_idempotency = True

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()
        super().initial(request, *args, **kwargs)  # authenticates: the signature check
        self._sig_ms = (time.perf_counter() - self._started) * 1000

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestReplayed):
            exc = terminal_replay_refuse(terminal=self.terminal, request=self.request._request)
        return super().handle_exception(exc)

    def key_and_digest(self, request: Any) -> tuple[str, str]:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ApiError(
                "idempotency_key_missing", "This request needs an Idempotency-Key header."
            )
        return key, request_hash(request.method, request.path, request.data)

    def answer(self, answer: Answer) -> Response:
        response = Response(answer.body, status=answer.status)
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        stages = {"sig": getattr(self, "_sig_ms", 0.0), **answer.timings}
        stages["total"] = (
            time.perf_counter() - getattr(self, "_started", time.perf_counter())
        ) * 1000
        response["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in stages.items())
        return response


class PaymentCreateView(IdempotentTerminalView):
    @extend_schema(request=PaymentInput, responses={201: dict})
    def post(self, request: Any) -> Response:
        key, digest = self.key_and_digest(request)
        data = _valid(PaymentInput, request.data)
        answer = payment_create(
            terminal=self.terminal,
            idempotency_key=key,
            digest=digest,
            nonce=self.terminal_nonce,
            amount=data["amount"],
            currency=data["currency"],
            payment_code=data["payment_code"],
            operator_id=str(data["operator_id"]),
            latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            request=request._request,
        )
        return self.answer(answer)


class PaymentDetailView(TerminalAPIView):
    model = Payment

    def refine_queryset(self, queryset):
        return queryset.select_related("terminal")

    @extend_schema(responses={200: dict})
    def get(self, request: Any, public_id: Any) -> Response:
        payment = self.get_queryset().filter(public_id=public_id).first()
        if payment is None:
            raise ApiError("payment_not_found", "No such payment.", status_code=404)
        return Response(payment_answer(payment))


class PaymentConfirmView(IdempotentTerminalView):
    @extend_schema(request=ConfirmInput, responses={200: dict})
    def post(self, request: Any, public_id: Any) -> Response:
        key, digest = self.key_and_digest(request)
        data = _valid(ConfirmInput, request.data)
        answer = payment_confirm(
            terminal=self.terminal,
            payment_public_id=public_id,
            password_sealed=data["password_sealed"],
            idempotency_key=key,
            digest=digest,
            nonce=self.terminal_nonce,
            request=request._request,
        )
        return self.answer(answer)


class RefundCreateView(IdempotentTerminalView):
    @extend_schema(request=RefundInput, responses={201: dict})
    def post(self, request: Any, public_id: Any) -> Response:
        key, digest = self.key_and_digest(request)
        data = _valid(RefundInput, request.data)
        answer = payment_refund(
            terminal=self.terminal,
            payment_public_id=public_id,
            amount=data["amount"],
            reason=data["reason"],
            supervisor_id=str(data["supervisor_id"]),
            supervisor_pin_sealed=data["supervisor_pin_sealed"],
            idempotency_key=key,
            digest=digest,
            nonce=self.terminal_nonce,
            request=request._request,
        )
        return self.answer(answer)


class ReversalCreateView(IdempotentTerminalView):
    @extend_schema(request=ReversalInput, responses={201: dict})
    def post(self, request: Any) -> Response:
        key, digest = self.key_and_digest(request)
        data = _valid(ReversalInput, request.data)
        answer = payment_reverse(
            terminal=self.terminal,
            original_key=data["original_idempotency_key"],
            idempotency_key=key,
            digest=digest,
            nonce=self.terminal_nonce,
            request=request._request,
        )
        return self.answer(answer)


class BatchCloseView(IdempotentTerminalView):
    @extend_schema(request=BatchCloseInput, responses={201: dict})
    def post(self, request: Any) -> Response:
        key, digest = self.key_and_digest(request)
        data = _valid(BatchCloseInput, request.data)
        answer = batch_close(
            terminal=self.terminal,
            counts=data,
            idempotency_key=key,
            digest=digest,
            nonce=self.terminal_nonce,
            request=request._request,
        )
        return self.answer(answer)


# --- wallet ------------------------------------------------------------------------


class WalletBalanceView(APIView):
    authentication_classes = [WalletTokenAuthentication]
    permission_classes = [IsPayer]

    @extend_schema(responses={200: dict})
    def get(self, request: Any) -> Response:
        balance = selectors.ledger_balance_for_payer(payer=request.user.payer)
        return Response(
            {"balance": balance.amount, "currency": balance.currency, "display": balance.format()}
        )


class WalletHistoryView(APIView):
    """Newest first, keyset paginated: pass `before` = the last item's cursor."""

    authentication_classes = [WalletTokenAuthentication]
    permission_classes = [IsPayer]

    @extend_schema(responses={200: dict})
    def get(self, request: Any) -> Response:
        before = request.query_params.get("before")
        try:
            before_id = int(before) if before else None
        except ValueError:
            raise ApiError(
                "cursor_invalid", "before is a cursor from a previous page.", param="before"
            ) from None
        items = selectors.wallet_history_for_payer(payer=request.user.payer, before_id=before_id)
        return Response(
            {
                "items": items,
                "next": str(items[-1]["cursor"]) if len(items) == selectors.HISTORY_PAGE else None,
            }
        )

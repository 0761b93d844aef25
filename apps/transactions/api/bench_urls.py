"""bench/payments.py only (TERMINAL_BENCH_ENDPOINTS=1): a bare ledger
transfer (payer → merchant minus fee, one durable transaction) through the
same HTTP stack, unsigned and without risk, idempotency or audit: the
yardstick the full payment is compared with."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Merchant, Payer
from apps.core.money import Money
from apps.transactions.services import ledger_payment_transfer


class BareLedgerTransferView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Any) -> Response:
        payer = Payer.objects.get(public_id=request.data["payer"])
        merchant = Merchant.objects.get(public_id=request.data["merchant"])
        with transaction.atomic(durable=True):
            entry = ledger_payment_transfer(
                payer=payer,
                merchant=merchant,
                amount=Money(int(request.data["amount"])),
                event=None,
            )
        return Response({"entry": str(entry.public_id)}, status=201)


urlpatterns = [path("ledger-transfer", BareLedgerTransferView.as_view(), name="bench-ledger")]

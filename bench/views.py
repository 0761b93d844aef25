"""What Django itself costs for moving money (bench/payments.py's
reference): a minimal DRF view that, in one transaction, locks the two
balance rows in id order, updates both and inserts the entry and its two
postings, all with the ORM. Unsigned, no idempotency, no audit, no risk:
not the product (it is served only by bench/settings.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.transactions.models import EntryKind, JournalEntry, LedgerAccount, Posting


class BareTransferView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Any) -> Response:
        amount = int(request.data["amount"])
        ids = sorted([int(request.data["from_account"]), int(request.data["to_account"])])
        with transaction.atomic():
            accounts = {
                a.pk: a
                for a in LedgerAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk")
            }
            source = accounts[int(request.data["from_account"])]
            target = accounts[int(request.data["to_account"])]
            if source.balance < amount:
                return Response({"error": "insufficient_funds"}, status=409)
            LedgerAccount.objects.filter(pk=source.pk).update(balance=F("balance") - amount)
            LedgerAccount.objects.filter(pk=target.pk).update(balance=F("balance") + amount)
            entry = JournalEntry.objects.create(kind=EntryKind.PAYMENT, currency=source.currency)
            Posting.objects.bulk_create(
                [
                    Posting(entry=entry, account=source, amount=-amount),
                    Posting(entry=entry, account=target, amount=amount),
                ]
            )
        return Response({"entry": str(entry.public_id)}, status=201)

"""End of day: a terminal's batch close against the server's counts."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.services import audit_record
from apps.transactions.models import PAID_STATUSES, BatchClose, Payment, Refund
from apps.transactions.services.idempotency import Answer, idempotency_claim, idempotency_store
from apps.transactions.services.payments import actor_label

BATCH_FIELDS = ("sales_count", "sales_total", "refund_count", "refund_total")


def batch_close(
    *,
    terminal: Any,
    counts: dict[str, int],
    idempotency_key: str,
    digest: str,
    nonce: str = "",
    request: HttpRequest | None = None,
) -> Answer:
    """End of day: the terminal's counts and totals since its previous close
    against the server's. Paid payments (completed or refunded, not
    reversed) count as sales; refunds made at this terminal as refunds.
    Mismatches are kept and reported (`matched` false, `differences`)."""
    with transaction.atomic(durable=True):
        replay = idempotency_claim(
            terminal=terminal, key=idempotency_key, digest=digest, nonce=nonce
        )
        if replay is not None:
            return replay
        # One close at a time per terminal (its period starts where the
        # previous one ended).
        type(terminal).objects.select_for_update().filter(pk=terminal.pk).first()
        previous = BatchClose.objects.filter(terminal=terminal).order_by("-period_end").first()
        start = previous.period_end if previous else None
        end = timezone.now()
        window = Q(created_at__lte=end) & (Q(created_at__gt=start) if start else Q())
        sales = Payment.objects.filter(
            window, terminal=terminal, status__in=PAID_STATUSES
        ).aggregate(n=Count("id"), total=Sum("amount"))
        refunds = Refund.objects.filter(window, terminal=terminal).aggregate(
            n=Count("id"), total=Sum("amount")
        )
        server = {
            "sales_count": sales["n"] or 0,
            "sales_total": sales["total"] or 0,
            "refund_count": refunds["n"] or 0,
            "refund_total": refunds["total"] or 0,
        }
        theirs = {name: int(counts.get(name, 0)) for name in BATCH_FIELDS}
        differences = {
            name: {"terminal": theirs[name], "server": server[name]}
            for name in BATCH_FIELDS
            if theirs[name] != server[name]
        }
        batch = BatchClose.objects.create(
            merchant=terminal.merchant,
            terminal=terminal,
            period_start=start,
            period_end=end,
            terminal_counts=theirs,
            server_counts=server,
            differences=differences,
            matched=not differences,
        )
        audit_record(
            action="batch.closed" if not differences else "batch.mismatch",
            actor=actor_label(terminal),
            merchant=terminal.merchant,
            target=batch,
            data={"terminal": theirs, "server": server},
            request=request,
        )
        answer = Answer(
            201,
            {
                "id": str(batch.public_id),
                "matched": batch.matched,
                "period_start": start.isoformat() if start else None,
                "period_end": end.isoformat(),
                "terminal": theirs,
                "server": server,
                "differences": differences,
            },
        )
        idempotency_store(
            terminal=terminal,
            key=idempotency_key,
            operation="batch.close",
            digest=digest,
            nonce=nonce,
            answer=answer,
        )
        return answer

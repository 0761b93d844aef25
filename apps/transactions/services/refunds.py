"""Refunds and reversals of terminal payments, each an idempotent business
action in one durable transaction (idempotency.py), with the payment row
locked, its transition and audit record written before the ledger moves the
money (lock order: apps/transactions/locks.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from apps.accounts.models import Membership
from apps.audit.services import audit_record
from apps.core.db import WriteBatch
from apps.core.money import Money
from apps.risk.detectors import risk_record_refund
from apps.terminals.services import TerminalError, operator_pin_check
from apps.transactions.errors import (
    CorrectionRefused,
    DuplicateLedgerEvent,
    InsufficientFunds,
    PaymentError,
)
from apps.transactions.models import (
    EntryKind,
    IdempotencyRecord,
    JournalEntry,
    Payment,
    PaymentStatus,
    Refund,
    Reversal,
)
from apps.transactions.services.idempotency import (
    BLOCKED_OPERATION,
    Answer,
    advisory_lock,
    idempotency_claim,
    idempotency_replay_find,
    idempotency_store,
)
from apps.transactions.services.ledger import ledger_refund, ledger_reverse
from apps.transactions.services.payments import (
    PAYMENT_EVENT_TYPE,
    SUPERVISOR_ROLES,
    actor_label,
    payment_answer,
    payment_transition,
    terminal_payment,
)


def _transition(payment: Payment, to: str, **kwargs: Any) -> None:
    batch = WriteBatch()
    payment_transition(payment, to, batch=batch, **kwargs)
    batch.execute()


def _sale_entry(payment: Payment) -> JournalEntry:
    """The entry that paid the merchant: the payment entry, or the release
    of its hold."""
    entries = JournalEntry.objects.filter(
        event_type=PAYMENT_EVENT_TYPE, event_id=str(payment.public_id)
    )
    sale = entries.filter(kind=EntryKind.PAYMENT).first()
    if sale is None:
        hold = entries.filter(kind=EntryKind.HOLD).first()
        sale = hold and hold.corrections.filter(kind=EntryKind.HOLD_RELEASE).first()
    if sale is None:
        raise PaymentError(
            "payment_not_refundable", "This payment did not pay the merchant.", status_code=409
        )
    return sale


def _refund_apply(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    approved_by: Membership | None,
    actor: Any,
    terminal: Any = None,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
    store: tuple[str, str] | None = None,
) -> Answer:
    """Inside the caller's transaction, with the payment row locked."""
    if type(amount) is not int or amount <= 0:
        raise PaymentError("amount_invalid", "amount is a positive integer of fen.", field="amount")
    if payment.status not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
        raise PaymentError(
            "payment_not_refundable",
            f"A {payment.status} payment cannot be refunded.",
            status_code=409,
        )
    left = payment.amount - payment.refunded_amount
    if amount > left:
        raise PaymentError(
            "refund_exceeds_remaining",
            f"Only {Money(left, payment.currency).format()} is left to refund.",
            status_code=422,
            field="amount",
        )
    refund = Refund.objects.create(
        merchant=payment.merchant,
        payment=payment,
        terminal=terminal,
        amount=amount,
        currency=payment.currency,
        reason=reason[:200],
        approved_by=approved_by,
        idempotency_key=idempotency_key,
    )
    payment.refunded_amount += amount
    target = (
        PaymentStatus.REFUNDED
        if payment.refunded_amount == payment.amount
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    _transition(
        payment,
        target,
        actor=actor,
        reason=reason,
        request=request,
        fields=("refunded_amount",),
        data={"refund": str(refund.public_id), "refund_amount": amount},
    )
    risk_record_refund(merchant_id=payment.merchant_id, amount=amount)
    body = {
        "id": str(refund.public_id),
        "amount": amount,
        "currency": payment.currency,
        "payment": payment_answer(payment),
        "created_at": refund.created_at.isoformat(),
    }
    answer = Answer(201, body, payment=payment)
    if store is not None:
        idempotency_store(
            terminal=terminal,
            key=idempotency_key,
            operation="payment.refund",
            digest=store[0],
            nonce=store[1],
            answer=answer,
        )
    sale = _sale_entry(payment)
    try:
        ledger_refund(
            original=sale,
            amount=Money(amount, payment.currency),
            event=refund,
            idempotency_key=f"{payment.public_id}:{idempotency_key}" if idempotency_key else "",
        )
    except InsufficientFunds:
        raise PaymentError(
            "insufficient_funds",
            "The merchant's settlement balance is too low for this refund.",
            status_code=409,
        ) from None
    except DuplicateLedgerEvent:
        raise PaymentError(
            "refund_duplicate", "This refund was already made.", status_code=409
        ) from None
    except CorrectionRefused as exc:
        raise PaymentError(exc.code, str(exc), status_code=409) from None
    return answer


def payment_refund(
    *,
    terminal: Any,
    payment_public_id: Any,
    amount: int,
    reason: str,
    supervisor_id: str,
    supervisor_pin_sealed: str,
    idempotency_key: str,
    digest: str,
    nonce: str = "",
    request: HttpRequest | None = None,
) -> Answer:
    """A refund from the terminal, all or part of what is left, approved by
    a supervisor (owner or manager) with their sealed transaction password."""
    if not idempotency_key:
        raise PaymentError(
            "idempotency_key_missing", "This request needs an Idempotency-Key header."
        )
    replay = idempotency_replay_find(
        terminal=terminal, key=idempotency_key, digest=digest, nonce=nonce
    )
    if replay is not None:
        return replay
    # Outside the refund's transaction: a wrong PIN must count even though
    # the refund is refused.
    try:
        supervisor = operator_pin_check(
            terminal=terminal,
            operator_id=supervisor_id,
            pin_sealed=supervisor_pin_sealed,
            request=request,
        )
    except TerminalError as exc:
        raise PaymentError(
            exc.code, exc.message, status_code=exc.status_code, field=exc.field
        ) from exc
    if supervisor.role not in SUPERVISOR_ROLES:
        raise PaymentError(
            "supervisor_required",
            "A refund needs an owner's or manager's transaction password.",
            status_code=403,
            field="supervisor_id",
        )
    with transaction.atomic(durable=True):
        replay = idempotency_claim(
            terminal=terminal, key=idempotency_key, digest=digest, nonce=nonce
        )
        if replay is not None:
            return replay
        payment = terminal_payment(terminal, payment_public_id, lock=True)
        return _refund_apply(
            payment=payment,
            amount=amount,
            reason=reason,
            approved_by=supervisor,
            actor=actor_label(terminal),
            terminal=terminal,
            idempotency_key=idempotency_key,
            request=request,
            store=(digest, nonce),
        )


def payment_refund_by_user(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    membership: Membership,
    form_key: str,
    request: HttpRequest | None = None,
) -> Refund:
    """A refund from the portal by an owner or manager (the view requires a
    fresh OTP step-up). `form_key` is the form's one-time key: a double
    submit posts once (refund_duplicate)."""
    if membership.role not in SUPERVISOR_ROLES or membership.merchant_id != payment.merchant_id:
        raise PaymentError(
            "supervisor_required", "Only an owner or manager can refund.", status_code=403
        )
    with transaction.atomic(durable=True):
        locked = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("terminal", "merchant", "payer")
            .get(pk=payment.pk)
        )
        if form_key and Refund.objects.filter(payment=locked, idempotency_key=form_key).exists():
            raise PaymentError("refund_duplicate", "This refund was already made.", status_code=409)
        answer = _refund_apply(
            payment=locked,
            amount=amount,
            reason=reason,
            approved_by=membership,
            actor=membership.user,
            idempotency_key=form_key,
            request=request,
        )
    return Refund.objects.get(public_id=answer.body["id"])


# --- reversals -------------------------------------------------------------------


def reversal_answer(reversal: Reversal) -> dict:
    return {
        "id": str(reversal.public_id),
        "original_idempotency_key": reversal.original_key,
        "outcome": reversal.outcome,
        "payment": payment_answer(reversal.payment) if reversal.payment else None,
        "created_at": reversal.created_at.isoformat(),
    }


def payment_reverse(
    *,
    terminal: Any,
    original_key: str,
    idempotency_key: str,
    digest: str,
    nonce: str = "",
    request: HttpRequest | None = None,
) -> Answer:
    """Voids what the terminal sent with `original_key`: a paid payment is
    reversed (its exact opposite entry), an unfinished one is voided, and a
    key no payment arrived with yet is blocked, so the late original is
    refused (payment_key_reversed). Refunded or held payments are refused."""
    if not original_key or len(original_key) > 255 or original_key == idempotency_key:
        raise PaymentError(
            "original_key_invalid",
            "Name the original's Idempotency-Key.",
            field="original_idempotency_key",
        )
    actor = actor_label(terminal)
    with transaction.atomic(durable=True):
        replay = idempotency_claim(
            terminal=terminal, key=idempotency_key, digest=digest, nonce=nonce
        )
        if replay is not None:
            return replay
        # Waits for an original still in flight: it either commits (and is
        # reversed here) or rolls back (and its key is blocked here).
        advisory_lock(terminal.pk, original_key, wait=True)
        existing = Reversal.objects.filter(terminal=terminal, original_key=original_key).first()
        if existing is not None:
            answer = Answer(200, reversal_answer(existing), payment=existing.payment)
            idempotency_store(
                terminal=terminal,
                key=idempotency_key,
                operation="payment.reverse",
                digest=digest,
                nonce=nonce,
                answer=answer,
            )
            return answer
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("terminal", "merchant", "payer")
            .filter(terminal=terminal, idempotency_key=original_key)
            .first()
        )
        if payment is None:
            outcome = Reversal.Outcome.KEY_BLOCKED
        elif payment.status == PaymentStatus.COMPLETED and payment.refunded_amount == 0:
            outcome = Reversal.Outcome.REVERSED
        elif payment.status == PaymentStatus.AWAITING_PASSWORD:
            outcome = Reversal.Outcome.VOIDED
        elif payment.status == PaymentStatus.DECLINED:
            outcome = Reversal.Outcome.NOTHING
        else:
            raise PaymentError(
                "payment_not_reversible",
                f"A {payment.status} payment cannot be reversed; refund it instead.",
                status_code=409,
            )
        reversal = Reversal.objects.create(
            merchant=terminal.merchant,
            terminal=terminal,
            original_key=original_key,
            payment=payment,
            outcome=outcome,
        )
        if outcome in (Reversal.Outcome.REVERSED, Reversal.Outcome.VOIDED):
            _transition(
                payment,
                PaymentStatus.REVERSED,
                actor=actor,
                reason="reversal",
                request=request,
                data={"reversal": str(reversal.public_id)},
            )
        else:
            if outcome == Reversal.Outcome.KEY_BLOCKED:
                IdempotencyRecord.objects.create(
                    terminal=terminal,
                    key=original_key,
                    operation=BLOCKED_OPERATION,
                    request_hash="",
                    response_status=409,
                    response_body={"reversal": str(reversal.public_id)},
                )
            audit_record(
                action=f"payment.reversal_{outcome}",
                actor=actor,
                merchant=terminal.merchant,
                target=reversal,
                data={"original_key": original_key},
                request=request,
            )
        answer = Answer(201, reversal_answer(reversal), payment=payment)
        idempotency_store(
            terminal=terminal,
            key=idempotency_key,
            operation="payment.reverse",
            digest=digest,
            nonce=nonce,
            answer=answer,
        )
        if outcome == Reversal.Outcome.REVERSED:
            try:
                ledger_reverse(
                    original=_sale_entry(payment), event=reversal, memo="terminal reversal"
                )
            except InsufficientFunds:
                raise PaymentError(
                    "insufficient_funds",
                    "The merchant's settlement balance is too low to reverse this payment.",
                    status_code=409,
                ) from None
            except CorrectionRefused as exc:
                raise PaymentError(exc.code, str(exc), status_code=409) from None
        return answer

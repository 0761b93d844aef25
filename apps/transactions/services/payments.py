"""Payments at POS terminals: create, step-up confirm, refund, reversal,
batch close, each an idempotent business action (DESIGN.md §6).

Every terminal action that changes state runs in ONE durable transaction
that also stores its idempotency record, so an answer exists exactly when
what it describes was committed. Inside it the order is the ledger's lock
order (apps/transactions/locks.py): the idempotency key's advisory lock,
business rows (payment, code, risk decision), audit records and the stored
answer, and the ledger helper LAST, so the hot account rows (a busy
merchant's settlement account, fee revenue) are locked only from their
UPDATE to COMMIT. apps.risk's risk_record_payment follows the ledger call
because it must know whether the money moved.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import Membership, Payer, Role
from apps.audit.services import audit_record
from apps.core.db import WriteBatch, db_value, first_row
from apps.core.money import CURRENCY_EXPONENT, Money
from apps.transactions.errors import (
    AccountFrozen,
    CorrectionRefused,
    DuplicateLedgerEvent,
    InsufficientFunds,
    PaymentCodeError,
    PaymentError,
)
from apps.transactions.models import (
    PAID_STATUSES,
    PAYMENT_TRANSITIONS,
    AccountKind,
    BatchClose,
    EntryKind,
    IdempotencyRecord,
    JournalEntry,
    LedgerAccount,
    Payment,
    PaymentStatus,
    PaymentTransition,
    Refund,
    Reversal,
)
from apps.transactions.services.ledger import (
    ledger_hold_place,
    ledger_payment_transfer,
    ledger_refund,
    ledger_reverse,
    payment_code_consume,
)

PAYMENT_EVENT_TYPE = "transactions.payment"
SUPERVISOR_ROLES = (Role.OWNER, Role.MANAGER)
# A payment whose wallet debit lost a race with another payment of the same
# payer is decided again from the start (the re-check then sees the balance).
RACE_RETRIES = 3


@dataclass
class Answer:
    """What the API answers: HTTP status and JSON body. `replayed` marks a
    stored answer returned again for the same Idempotency-Key."""

    status: int
    body: dict
    replayed: bool = False
    payment: Payment | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _LostRace(Exception):
    """The wallet debit found less money than the pre-check did: roll back
    and decide again."""


# --- idempotency ---------------------------------------------------------------


# A reversal that found no payment stores this record under the original's
# key, so the late original meets it in the lookup it makes anyway.
BLOCKED_OPERATION = "payment.blocked"


def request_hash(method: str, path: str, data: Any) -> str:
    """The fingerprint a key is bound to: method, path and the body as
    canonical JSON (so key order or spacing do not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def _lock_id(terminal_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{terminal_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _advisory_lock(terminal_id: int, key: str, *, wait: bool) -> bool:
    """A transaction-scoped advisory lock on (terminal, key). PostgreSQL
    only: SQLite serialises writers anyway (one writer at a time)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(terminal_id, key)])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(terminal_id, key)])
        return bool(cursor.fetchone()[0])


def _replay(record: IdempotencyRecord, digest: str) -> Answer:
    if record.request_hash != digest:
        raise PaymentError(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
            status_code=422,
        )
    return Answer(record.response_status, record.response_body, replayed=True)


def idempotency_replay_find(*, terminal: Any, key: str, digest: str) -> Answer | None:
    """The stored answer for this key (outside any transaction): lets a
    retried refund skip the supervisor PIN check. Raises the 422 of a reused
    key; None when the key is new."""
    record = _idempotency_record(terminal, key)
    return _replay(record, digest) if record is not None else None


def _idempotency_record(terminal: Any, key: str) -> IdempotencyRecord | None:
    # IdempotencyRecord.objects.filter(terminal=terminal, key=key).first()
    return first_row(IdempotencyRecord, 'terminal_id = %s AND "key" = %s', [terminal.pk, key])


def _idempotency_claim(terminal: Any, key: str, digest: str) -> Answer | None:
    """Inside the action's transaction: claims the key (409 while another
    request with it is in flight) and returns the stored answer if any."""
    if not key:
        raise PaymentError(
            "idempotency_key_missing", "This request needs an Idempotency-Key header."
        )
    if len(key) > 255:
        raise PaymentError(
            "idempotency_key_invalid", "An Idempotency-Key is at most 255 characters."
        )
    if not _advisory_lock(terminal.pk, key, wait=False):
        raise PaymentError(
            "idempotency_in_flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            status_code=409,
        )
    record = _idempotency_record(terminal, key)
    if record is not None and record.operation == BLOCKED_OPERATION:
        raise PaymentError(
            "payment_key_reversed",
            "This payment was reversed before it arrived; it is refused.",
            status_code=409,
        )
    return _replay(record, digest) if record is not None else None


def _idempotency_store(
    terminal: Any,
    key: str,
    operation: str,
    digest: str,
    answer: Answer,
    *,
    batch: WriteBatch | None = None,
) -> IdempotencyRecord:
    record = IdempotencyRecord(
        terminal=terminal,
        key=key,
        operation=operation,
        request_hash=digest,
        response_status=answer.status,
        response_body=answer.body,
        payment=answer.payment,
    )
    if batch is None:
        record.save(force_insert=True)
    else:
        batch.insert(record)
    return record


def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Deletes stored answers older than IDEMPOTENCY_KEEP_DAYS (≥ 7: a
    terminal may retry after days offline)."""
    older_than = older_than or timedelta(days=settings.IDEMPOTENCY_KEEP_DAYS)
    with transaction.atomic(durable=True):
        deleted, _ = IdempotencyRecord.objects.filter(
            created_at__lt=timezone.now() - older_than
        ).delete()
    return deleted


# --- the state machine ---------------------------------------------------------


def _actor_label(terminal: Any) -> str:
    return f"terminal:{terminal.public_id}"


def _payment_transition(
    payment: Payment,
    to: str,
    *,
    actor: Any,
    reason: str = "",
    request: HttpRequest | None = None,
    fields: tuple[str, ...] = (),
    data: dict | None = None,
    batch: WriteBatch | None = None,
) -> None:
    """Moves a payment to `to` (inserting it when new) if the state machine
    allows it, with its transition row and audit record (both left in
    `batch` when given; the payment row itself is written now)."""
    before = "" if payment.pk is None else payment.status
    if to not in PAYMENT_TRANSITIONS[before]:
        raise PaymentError(
            "payment_state_invalid",
            f"A {before or 'new'} payment cannot become {to}.",
            status_code=409,
        )
    payment.status = to
    payment.updated_at = timezone.now()
    if payment.pk is None:
        payment.save(force_insert=True)
    else:
        payment.save(update_fields=["status", "updated_at", *fields])
    transition = PaymentTransition(
        payment=payment,
        from_status=before,
        to_status=to,
        reason=reason[:200],
        actor=str(getattr(actor, "public_id", actor) or "")[:100],
    )
    if batch is None:
        transition.save(force_insert=True)
    else:
        batch.insert(transition)
    audit_record(
        action="payment.created" if not before else f"payment.{to}",
        actor=actor,
        merchant=payment.merchant,
        target=payment,
        data={"from": before, "to": to, "amount": payment.amount, "reason": reason, **(data or {})},
        request=request,
        batch=batch,
    )


def payment_answer(payment: Payment) -> dict:
    """The API's view of a payment (the stored answer of its requests)."""
    body: dict[str, Any] = {
        "id": str(payment.public_id),
        "status": str(payment.status),
        "amount": payment.amount,
        "currency": payment.currency,
        "refunded_amount": payment.refunded_amount,
        "reasons": list(payment.reasons or []),
        "terminal_id": str(payment.terminal.public_id),
        "risk_decision_id": str(payment.risk_decision_public_id or "") or None,
        "created_at": payment.created_at.isoformat(),
    }
    if payment.status == PaymentStatus.AWAITING_PASSWORD:
        body["next_action"] = "confirm_payment_password"
    if payment.status == PaymentStatus.DECLINED:
        body["decline_code"] = (payment.reasons or ["declined"])[0]
    return body


# --- create and confirm --------------------------------------------------------


def _operator(terminal: Any, operator_id: str) -> Membership:
    from apps.terminals.selectors import OPERATOR_ROLES

    try:
        public_id = uuid.UUID(str(operator_id))
    except ValueError:
        membership = None
    else:
        # Membership.objects.for_merchant(terminal.merchant).filter(public_id=...,
        # is_active=True, role__in=OPERATOR_ROLES).first(), without the compile.
        roles = ", ".join(["%s"] * len(OPERATOR_ROLES))
        membership = first_row(
            Membership,
            f"merchant_id = %s AND public_id = %s AND is_active AND role IN ({roles})",
            [terminal.merchant_id, db_value(Membership, "public_id", public_id), *OPERATOR_ROLES],
        )
    if membership is None:
        raise PaymentError(
            "operator_unknown", "No such operator at this merchant.", field="operator_id"
        )
    return membership


def _wallet(payer: Payer, currency: str) -> LedgerAccount | None:
    """The wallet as committed now (no lock: the ledger's conditional debit
    is what guarantees the balance; this read only avoids a doomed debit)."""
    return first_row(
        LedgerAccount,
        "kind = %s AND payer_id = %s AND currency = %s",
        [AccountKind.PAYER_WALLET, payer.pk, currency],
    )


def _decide(payment: Payment, terminal: Any, *, password_verified: bool, timings: dict) -> Any:
    from apps.risk.engine import payment_context_build, risk_decide

    started = time.perf_counter()
    ctx = payment_context_build(
        payer=payment.payer,
        merchant=terminal.merchant,
        terminal=terminal,
        amount=payment.amount,
        currency=payment.currency,
        latitude=payment.latitude,
        longitude=payment.longitude,
        password_verified=password_verified,
        payment_public_id=payment.public_id,
    )
    # Stored by _settle with the payment's other writes.
    decision = risk_decide(ctx=ctx, save=False)
    timings["risk"] = timings.get("risk", 0.0) + (time.perf_counter() - started) * 1000
    payment.risk_decision_public_id = decision.public_id
    return ctx, decision


def _settle(
    payment: Payment,
    terminal: Any,
    ctx: Any,
    decision: Any,
    *,
    key: str,
    digest: str,
    operation: str,
    status_code: int,
    request: HttpRequest | None,
    timings: dict,
) -> Answer:
    """Applies a risk decision to a (new or awaiting) payment: state, audit,
    stored answer, then the money, then risk's bookkeeping."""
    from apps.risk.engine import risk_record_payment
    from apps.risk.services import risk_case_open

    actor = _actor_label(terminal)
    outcome = decision.outcome
    payment.reasons = list(decision.reasons)
    fields = ("reasons", "risk_decision_public_id", "password_failures")
    wallet = None
    if outcome == "approve" or outcome == "hold":
        wallet = _wallet(payment.payer, payment.currency)
        frozen = wallet is not None and wallet.frozen
        if frozen or wallet is None or wallet.balance < payment.amount:
            outcome = "decline"
            payment.reasons = ["account_frozen" if frozen else "insufficient_funds"]
    if outcome == "step_up" and ctx.password_verified:
        # Risk asked for the password it already has: nothing more to ask.
        outcome, payment.reasons = "decline", [*payment.reasons, "step_up_unresolved"]
    target = {
        "approve": PaymentStatus.COMPLETED,
        "hold": PaymentStatus.HELD,
        "decline": PaymentStatus.DECLINED,
        "step_up": PaymentStatus.AWAITING_PASSWORD,
    }[outcome]
    # The payment row is written now (the rows below refer to it); its
    # transition, audit record, stored answer, risk decision and risk totals
    # are independent of one another and go out in one round trip. All of
    # it before the ledger: the ledger updates the hot account rows last, so
    # nothing may run between it and COMMIT (a lost balance race rolls all
    # of this back and the payment is retried).
    batch = WriteBatch()
    _payment_transition(
        payment,
        target,
        actor=actor,
        reason=",".join(payment.reasons),
        request=request,
        fields=fields,
        data={"risk_decision": str(decision.public_id)},
        batch=batch,
    )
    answer = Answer(status_code, payment_answer(payment), payment=payment, timings=timings)
    _idempotency_store(terminal, key, operation, digest, answer, batch=batch)
    started = time.perf_counter()
    if outcome in ("approve", "hold", "decline"):
        risk_outcome = {"approve": "approved", "hold": "held", "decline": "declined"}[outcome]
        risk_record_payment(
            ctx=ctx,
            decision=decision,
            outcome=risk_outcome,
            payment_public_id=payment.public_id,
            batch=batch,
        )
    else:  # waiting for the payer's password: the decision is kept as it is
        batch.insert(decision.record)
    batch.execute()
    timings["writes"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    try:
        if outcome == "approve":
            ledger_payment_transfer(
                payer=payment.payer,
                merchant=terminal.merchant,
                amount=payment.money,
                event=(PAYMENT_EVENT_TYPE, str(payment.public_id)),
                wallet=wallet,
                # Any ledger error rolls this whole transaction back.
                savepoint=False,
            )
        elif outcome == "hold":
            entry = ledger_hold_place(
                payer=payment.payer,
                merchant=terminal.merchant,
                amount=payment.money,
                event=(PAYMENT_EVENT_TYPE, str(payment.public_id)),
            )
    except (InsufficientFunds, AccountFrozen) as exc:
        raise _LostRace() from exc
    timings["ledger"] = (time.perf_counter() - started) * 1000
    # From here to the end of the caller's atomic block: COMMIT and the
    # on-commit hooks (risk counters, the detectors task).
    timings["_commit_from"] = time.perf_counter()
    if outcome == "hold":
        risk_case_open(
            kind="payment_hold",
            title=f"Held payment {payment.money.format()} at {terminal.merchant.name}",
            merchant=terminal.merchant,
            decision_public_id=decision.public_id,
            payment_public_id=payment.public_id,
            hold_entry_public_id=entry.public_id,
            payer_id=payment.payer_id,
            amount=payment.amount,
            currency=payment.currency,
            actor=actor,
        )
    return answer


def _coordinate(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def _retrying(action: Any) -> Answer:
    for attempt in range(RACE_RETRIES):
        try:
            return action()
        except _LostRace:
            if attempt == RACE_RETRIES - 1:
                raise PaymentError(
                    "insufficient_funds",
                    "The wallet's balance changed during the payment; try again.",
                    status_code=409,
                ) from None
    raise AssertionError("unreachable")


def payment_create(
    *,
    terminal: Any,
    idempotency_key: str,
    digest: str,
    amount: int,
    currency: str,
    payment_code: str,
    operator_id: str,
    latitude: Any = None,
    longitude: Any = None,
    request: HttpRequest | None = None,
) -> Answer:
    """A terminal's payment: spends the payer's code, asks risk, and moves
    the money as decided (approve: payer → merchant minus fee; hold: payer →
    risk hold with a case; step-up: nothing yet; decline: nothing). Answers
    201 with the payment, whatever the outcome; the same key and body get the
    stored answer again. Raises PaymentError for requests that create no
    payment (bad code, unknown operator, reversed key, ...)."""
    if type(amount) is not int or amount <= 0:
        raise PaymentError("amount_invalid", "amount is a positive integer of fen.", field="amount")
    if currency not in CURRENCY_EXPONENT:
        raise PaymentError(
            "currency_unsupported", f"{currency} is not supported.", field="currency"
        )

    def attempt() -> Answer:
        timings: dict[str, float] = {}
        with transaction.atomic(durable=True):
            replay = _idempotency_claim(terminal, idempotency_key, digest)
            if replay is not None:
                return replay
            operator = _operator(terminal, operator_id)
            try:
                payer = payment_code_consume(code=payment_code)
            except PaymentCodeError as exc:
                raise PaymentError(exc.code, str(exc), field="payment_code") from exc
            payment = Payment(
                merchant=terminal.merchant,
                terminal=terminal,
                shop_id=terminal.shop_id,
                operator=operator,
                payer=payer,
                amount=amount,
                currency=currency,
                latitude=_coordinate(latitude),
                longitude=_coordinate(longitude),
                idempotency_key=idempotency_key,
            )
            if _payment_password_locked(payer):
                _decline_password_locked(payment, actor=_actor_label(terminal), request=request)
                answer = Answer(201, payment_answer(payment), payment=payment)
                _idempotency_store(terminal, idempotency_key, "payment.create", digest, answer)
                return answer
            ctx, decision = _decide(payment, terminal, password_verified=False, timings=timings)
            answer = _settle(
                payment,
                terminal,
                ctx,
                decision,
                key=idempotency_key,
                digest=digest,
                operation="payment.create",
                status_code=201,
                request=request,
                timings=timings,
            )
        _commit_timed(timings)
        return answer

    return _retrying(attempt)


def _commit_timed(timings: dict[str, float]) -> None:
    started = timings.pop("_commit_from", None)
    if started is not None:
        timings["commit"] = (time.perf_counter() - started) * 1000


def _decline_password_locked(
    payment: Payment, *, actor: Any, request: HttpRequest | None, fields: tuple[str, ...] = ()
) -> None:
    payment.reasons = ["payment_password_locked"]
    _payment_transition(
        payment,
        PaymentStatus.DECLINED,
        actor=actor,
        reason="payment_password_locked",
        request=request,
        fields=("reasons", *fields),
    )


def _payment_password_locked(payer: Payer) -> bool:
    from apps.accounts.models import PaymentPassword
    from apps.accounts.services import payment_password_is_locked

    if hasattr(payer, "payment_password_locked_until"):
        # Read with the payment code's spend (payment_code_consume).
        return PaymentPassword(locked_until=payer.payment_password_locked_until).is_locked()
    return payment_password_is_locked(payer)


def _terminal_payment(terminal: Any, payment_public_id: Any, *, lock: bool) -> Payment:
    """The merchant's payment (404 for another merchant's, as for none)."""
    try:
        public_id = uuid.UUID(str(payment_public_id))
    except ValueError:
        raise PaymentError("payment_not_found", "No such payment.", status_code=404) from None
    rows = Payment.objects.for_merchant(terminal.merchant).select_related(
        "payer", "terminal", "merchant"
    )
    if lock:
        rows = rows.select_for_update(of=("self",))
    payment = rows.filter(public_id=public_id).first()
    if payment is None:
        raise PaymentError("payment_not_found", "No such payment.", status_code=404)
    return payment


def payment_confirm(
    *,
    terminal: Any,
    payment_public_id: Any,
    password_sealed: str,
    idempotency_key: str,
    digest: str,
    request: HttpRequest | None = None,
) -> Answer:
    """The step-up: the payer's payment password, sealed to the server's
    key. Right: risk decides again (knowing the password was checked) and
    the payment completes, is held or declined. Wrong: counted toward the
    payer's lockout (403 payment_password_wrong); the lockout declines it."""
    from apps.accounts.errors import PaymentPasswordLocked, PaymentPasswordNotSet
    from apps.accounts.services import payment_password_verify
    from apps.risk.engine import risk_password_failure_record
    from apps.terminals.crypto import SecretUndecryptable, secret_open

    def attempt() -> Answer:
        timings: dict[str, float] = {}
        with transaction.atomic(durable=True):
            replay = _idempotency_claim(terminal, idempotency_key, digest)
            if replay is not None:
                return replay
            payment = _terminal_payment(terminal, payment_public_id, lock=True)
            if payment.status != PaymentStatus.AWAITING_PASSWORD:
                raise PaymentError(
                    "payment_not_awaiting_password",
                    f"This payment is {payment.status}; it awaits no password.",
                    status_code=409,
                )
            try:
                password = secret_open(password_sealed)
            except SecretUndecryptable:
                raise PaymentError(
                    "secret_undecryptable",
                    "The sealed password cannot be opened with the server's key.",
                    field="password_sealed",
                ) from None
            actor = _actor_label(terminal)
            try:
                ok = payment_password_verify(
                    payer=payment.payer, password=password, request=request
                )
                locked = False
            except PaymentPasswordLocked:
                ok, locked = False, True
            except PaymentPasswordNotSet:
                raise PaymentError(
                    "payment_password_not_set",
                    "The payer has not set a payment password.",
                    status_code=409,
                ) from None
            finally:
                del password
            if not ok:
                risk_password_failure_record(payer_id=payment.payer_id)
                payment.password_failures += 1
                if locked or _payment_password_locked(payment.payer):
                    _decline_password_locked(
                        payment, actor=actor, request=request, fields=("password_failures",)
                    )
                    answer = Answer(200, payment_answer(payment), payment=payment)
                else:
                    payment.save(update_fields=["password_failures"])
                    body = {
                        "error": {
                            "code": "payment_password_wrong",
                            "message": "Wrong payment password.",
                            "param": "password_sealed",
                        },
                        "payment": payment_answer(payment),
                    }
                    answer = Answer(403, body, payment=payment)
                _idempotency_store(terminal, idempotency_key, "payment.confirm", digest, answer)
                return answer
            ctx, decision = _decide(payment, terminal, password_verified=True, timings=timings)
            answer = _settle(
                payment,
                terminal,
                ctx,
                decision,
                key=idempotency_key,
                digest=digest,
                operation="payment.confirm",
                status_code=200,
                request=request,
                timings=timings,
            )
        _commit_timed(timings)
        return answer

    return _retrying(attempt)


# --- refunds ---------------------------------------------------------------------


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
    from apps.risk.detectors import risk_record_refund

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
    _payment_transition(
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
        _idempotency_store(terminal, idempotency_key, "payment.refund", store[0], answer)
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
    request: HttpRequest | None = None,
) -> Answer:
    """A refund from the terminal, all or part of what is left, approved by
    a supervisor (owner or manager) with their sealed transaction password."""
    from apps.terminals.services import TerminalError, operator_pin_check

    if not idempotency_key:
        raise PaymentError(
            "idempotency_key_missing", "This request needs an Idempotency-Key header."
        )
    replay = idempotency_replay_find(terminal=terminal, key=idempotency_key, digest=digest)
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
        replay = _idempotency_claim(terminal, idempotency_key, digest)
        if replay is not None:
            return replay
        payment = _terminal_payment(terminal, payment_public_id, lock=True)
        return _refund_apply(
            payment=payment,
            amount=amount,
            reason=reason,
            approved_by=supervisor,
            actor=_actor_label(terminal),
            terminal=terminal,
            idempotency_key=idempotency_key,
            request=request,
            store=(digest, ""),
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
    actor = _actor_label(terminal)
    with transaction.atomic(durable=True):
        replay = _idempotency_claim(terminal, idempotency_key, digest)
        if replay is not None:
            return replay
        # Waits for an original still in flight: it either commits (and is
        # reversed here) or rolls back (and its key is blocked here).
        _advisory_lock(terminal.pk, original_key, wait=True)
        existing = Reversal.objects.filter(terminal=terminal, original_key=original_key).first()
        if existing is not None:
            answer = Answer(200, reversal_answer(existing), payment=existing.payment)
            _idempotency_store(terminal, idempotency_key, "payment.reverse", digest, answer)
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
            _payment_transition(
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
        _idempotency_store(terminal, idempotency_key, "payment.reverse", digest, answer)
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


# --- batch close -----------------------------------------------------------------

BATCH_FIELDS = ("sales_count", "sales_total", "refund_count", "refund_total")


def batch_close(
    *,
    terminal: Any,
    counts: dict[str, int],
    idempotency_key: str,
    digest: str,
    request: HttpRequest | None = None,
) -> Answer:
    """End of day: the terminal's counts and totals since its previous close
    against the server's. Paid payments (completed or refunded, not
    reversed) count as sales; refunds made at this terminal as refunds.
    Mismatches are kept and reported (`matched` false, `differences`)."""
    with transaction.atomic(durable=True):
        replay = _idempotency_claim(terminal, idempotency_key, digest)
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
            actor=_actor_label(terminal),
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
        _idempotency_store(terminal, idempotency_key, "batch.close", digest, answer)
        return answer


# --- holds decided by compliance (apps.risk's hold_resolved signal) ----------------


def payment_hold_resolved(*, payment_public_id: Any, result: str, actor: Any = None) -> None:
    """Inside risk's transaction that moved a held payment's money: the
    payment follows (released → completed; returned or expired → returned)."""
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(public_id=payment_public_id)
        .first()
    )
    if payment is None or payment.status != PaymentStatus.HELD:
        return
    target = PaymentStatus.COMPLETED if result == "released" else PaymentStatus.RETURNED
    _payment_transition(payment, target, actor=actor or "system", reason=f"hold {result}")

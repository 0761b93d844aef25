"""Payments at POS terminals: create and the step-up confirm, each an
idempotent business action (DESIGN.md §6), and the payment's state machine.

A payment is a handful of round trips to the database, in its one durable
transaction (the figures: bench/payments.py; the statements are pinned by
tests/transactions/test_payment_statements.py):

1. the idempotency key's advisory lock (idempotency.py);
2. the stored answer for the key and the operator, in one SELECT;
3. the payment code's spend, with the payer, its payment password and the
   accounts the money moves between (ledger.payment_code_spend);
4. risk's running totals (apps.risk.engine: risk decides here, before any
   money moves; its velocity counters are in Redis);
5. the audit chain head this transaction appends to (locked);
6. every write, in one statement (core.db.WriteBatch): the payment, its
   transition, its audit record, the stored answer, the risk decision and
   totals, and the journal entry with its postings, the account balances
   last (lock order: apps/transactions/locks.py);

then COMMIT, and after it the risk counters. A debit that lost a race for
the wallet's balance rolls everything back and the payment is decided again.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.errors import PaymentPasswordLocked, PaymentPasswordNotSet
from apps.accounts.models import Membership, Role
from apps.accounts.services import payment_password_is_locked, payment_password_verify
from apps.audit.services import audit_record
from apps.core.db import WriteBatch, db_value, fetch_one, reader
from apps.core.money import CURRENCY_EXPONENT
from apps.risk.engine import (
    payment_context_build,
    risk_decide,
    risk_password_failure_record,
    risk_record_payment,
)
from apps.risk.services import risk_case_open
from apps.terminals.crypto import SecretUndecryptable, secret_open
from apps.terminals.selectors import OPERATOR_ROLES
from apps.transactions.errors import (
    AccountFrozen,
    InsufficientFunds,
    PaymentCodeError,
    PaymentError,
)
from apps.transactions.models import (
    PAYMENT_TRANSITIONS,
    Payment,
    PaymentStatus,
    PaymentTransition,
)
from apps.transactions.services.idempotency import (
    Answer,
    advisory_lock,
    idempotency_claim,
    idempotency_store,
    key_check,
    stored_answer_read,
    stored_answer_select,
)
from apps.transactions.services.ledger import (
    PaymentFunds,
    ledger_hold_place,
    ledger_payment_transfer,
    payment_code_spend,
    payment_funds_read,
)

PAYMENT_EVENT_TYPE = "transactions.payment"
SUPERVISOR_ROLES = (Role.OWNER, Role.MANAGER)
# A payment whose wallet debit lost a race with another payment of the same
# payer (or whose stored answer a twin request wrote first) is decided again
# from the start: the re-check then sees the balance (or the answer).
RACE_RETRIES = 3


class _LostRace(Exception):
    """Roll back and decide again."""


# --- the state machine ---------------------------------------------------------


def actor_label(terminal: Any) -> str:
    return f"terminal:{terminal.public_id}"


def payment_transition(
    payment: Payment,
    to: str,
    *,
    actor: Any,
    batch: WriteBatch,
    reason: str = "",
    request: HttpRequest | None = None,
    fields: tuple[str, ...] = (),
    data: dict | None = None,
) -> None:
    """Moves a payment to `to` if the state machine allows it: the payment
    row (inserted when new, else its status and `fields` updated), its
    transition row and its audit record, all left in `batch`."""
    before = "" if payment.pk is None else payment.status
    if to not in PAYMENT_TRANSITIONS[before]:
        raise PaymentError(
            "payment_state_invalid",
            _("A %(before)s payment cannot become %(to)s.") % {"before": before or "new", "to": to},
            status_code=409,
        )
    payment.status = to
    payment.updated_at = timezone.now()
    if payment.pk is None:
        batch.insert(payment)
    else:
        batch.update(payment, ["status", "updated_at", *fields])
    batch.insert(
        PaymentTransition(
            payment=payment,
            from_status=before,
            to_status=to,
            reason=reason[:200],
            actor=str(getattr(actor, "public_id", actor) or "")[:100],
        )
    )
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


@lru_cache(maxsize=4)
def _claim_sql(vendor: str) -> str:
    """A key's stored answer and an operator, in one SELECT (params: terminal
    id, key, merchant id, operator public id, the operator roles)."""
    answer_columns, answer_join = stored_answer_select()
    operators = reader(Membership, "op")
    roles = ", ".join(["%s"] * len(OPERATOR_ROLES))
    return (
        f"SELECT {answer_columns}, {operators.columns} FROM (SELECT 1 AS one) x "  # noqa: S608
        f"{answer_join} LEFT JOIN {operators.table} op ON op.merchant_id = %s "
        f"AND op.public_id = %s AND op.is_active AND op.role IN ({roles})"
    )


def _claimed(
    terminal: Any, key: str, digest: str, nonce: str, operator_id: str
) -> tuple[Answer | None, Membership | None]:
    """Claims the key (409 while another request holds it), then reads its
    stored answer and the operator in one SELECT: (the answer to replay or
    None, the terminal's merchant's active operator or None)."""
    key_check(key)
    if not advisory_lock(terminal.pk, key, wait=False):
        raise PaymentError(
            "idempotency_in_flight",
            _("A request with this Idempotency-Key is still being processed; retry shortly."),
            status_code=409,
        )
    try:
        operator_public_id = db_value(Membership, "public_id", uuid.UUID(str(operator_id)))
    except ValueError:
        operator_public_id = None
    row = fetch_one(
        _claim_sql(connection.vendor),
        [terminal.pk, key, terminal.merchant_id, operator_public_id, *OPERATOR_ROLES],
    )
    assert row is not None
    answer, offset = stored_answer_read(row, 0, digest=digest, nonce=nonce)
    operator = reader(Membership, "op").read(row, offset)
    return answer, operator  # type: ignore[return-value]


def _decide(payment: Payment, terminal: Any, *, password_verified: bool, timings: dict) -> Any:
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
    funds: PaymentFunds,
    *,
    key: str,
    digest: str,
    nonce: str,
    operation: str,
    status_code: int,
    request: HttpRequest | None,
    timings: dict,
    batch: WriteBatch,
) -> Answer:
    """Applies a risk decision to a (new or awaiting) payment: state, audit,
    stored answer, risk's bookkeeping and the money, in `batch`, which it
    executes."""
    actor = actor_label(terminal)
    outcome = decision.outcome
    payment.reasons = list(decision.reasons)
    wallet = funds.wallet
    if outcome in ("approve", "hold"):
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
    payment_transition(
        payment,
        target,
        actor=actor,
        reason=",".join(payment.reasons),
        request=request,
        fields=("reasons", "risk_decision_public_id", "password_failures"),
        data={"risk_decision": str(decision.public_id)},
        batch=batch,
    )
    answer = Answer(status_code, payment_answer(payment), payment=payment, timings=timings)
    idempotency_store(
        terminal=terminal,
        key=key,
        operation=operation,
        digest=digest,
        nonce=nonce,
        answer=answer,
        batch=batch,
    )
    if outcome == "step_up":  # waiting for the payer's password: the decision is kept as it is
        batch.insert(decision.record)
    else:
        risk_record_payment(
            ctx=ctx,
            decision=decision,
            outcome={"approve": "approved", "hold": "held", "decline": "declined"}[outcome],
            payment_public_id=payment.public_id,
            batch=batch,
        )
    event = (PAYMENT_EVENT_TYPE, str(payment.public_id))
    if outcome == "approve":
        ledger_payment_transfer(
            payer=payment.payer,
            merchant=terminal.merchant,
            amount=payment.money,
            event=event,
            wallet=wallet,
            settlement=funds.settlement,
            revenue=funds.revenue,
            batch=batch,
        )
    elif outcome == "hold":
        entry = ledger_hold_place(
            payer=payment.payer,
            merchant=terminal.merchant,
            amount=payment.money,
            event=event,
            wallet=wallet,
            hold=funds.hold,
            batch=batch,
        )
        risk_case_open(
            kind="payment_hold",
            title=f"Held payment {payment.money.format()} at {terminal.merchant.name}",
            merchant=terminal.merchant,
            decision=decision.record,
            payment_public_id=payment.public_id,
            hold_entry_public_id=entry.public_id,
            payer_id=payment.payer_id,
            amount=payment.amount,
            currency=payment.currency,
            actor=actor,
            batch=batch,
        )
    started = time.perf_counter()
    try:
        batch.execute()
    except (InsufficientFunds, AccountFrozen) as exc:
        raise _LostRace() from exc
    timings["writes"] = (time.perf_counter() - started) * 1000
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
                    _("The wallet's balance changed during the payment; try again."),
                    status_code=409,
                ) from None
        except IntegrityError:
            # A twin request with the same key committed its answer between
            # our claim and our writes: the next attempt replays it.
            if attempt == RACE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _committed(answer: Answer, started: float) -> Answer:
    answer.timings["total_service"] = (time.perf_counter() - started) * 1000
    return answer


def payment_create(
    *,
    terminal: Any,
    idempotency_key: str,
    digest: str,
    amount: int,
    currency: str,
    payment_code: str,
    operator_id: str,
    nonce: str = "",
    latitude: Any = None,
    longitude: Any = None,
    request: HttpRequest | None = None,
) -> Answer:
    """A terminal's payment: spends the payer's code, asks risk, and moves
    the money as decided (approve: payer → merchant minus fee; hold: payer →
    risk hold with a case; step-up: nothing yet; decline: nothing). Answers
    201 with the payment, whatever the outcome; the same key and body get the
    stored answer again. Raises PaymentError for requests that create no
    payment (bad code, unknown operator, reversed key, ...). `nonce`: the
    signed request's, kept with the stored answer."""
    if type(amount) is not int or amount <= 0:
        raise PaymentError(
            "amount_invalid", _("amount is a positive integer of fen."), field="amount"
        )
    if currency not in CURRENCY_EXPONENT:
        raise PaymentError(
            "currency_unsupported",
            _("%(currency)s is not supported.") % {"currency": currency},
            field="currency",
        )

    def attempt() -> Answer:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        with transaction.atomic(durable=True):
            replay, operator = _claimed(terminal, idempotency_key, digest, nonce, operator_id)
            if replay is not None:
                return replay
            if operator is None:
                raise PaymentError(
                    "operator_unknown",
                    _("No such operator at this merchant."),
                    field="operator_id",
                )
            try:
                funds = payment_code_spend(
                    code=payment_code, merchant_id=terminal.merchant_id, currency=currency
                )
            except PaymentCodeError as exc:
                raise PaymentError(exc.code, str(exc), field="payment_code") from exc
            payment = Payment(
                merchant=terminal.merchant,
                terminal=terminal,
                shop_id=terminal.shop_id,
                operator=operator,
                payer=funds.payer,
                amount=amount,
                currency=currency,
                latitude=_coordinate(latitude),
                longitude=_coordinate(longitude),
                idempotency_key=idempotency_key,
            )
            batch = WriteBatch()
            common = {"key": idempotency_key, "digest": digest, "nonce": nonce}
            if funds.password is not None and funds.password.is_locked():
                answer = _decline_password_locked(
                    payment, terminal, operation="payment.create", status_code=201,
                    request=request, batch=batch, **common,
                )  # fmt: skip
                batch.execute()
                return answer
            ctx, decision = _decide(payment, terminal, password_verified=False, timings=timings)
            answer = _settle(
                payment,
                terminal,
                ctx,
                decision,
                funds,
                operation="payment.create",
                status_code=201,
                request=request,
                timings=timings,
                batch=batch,
                **common,
            )
        return _committed(answer, started)

    return _retrying(attempt)


def _decline_password_locked(
    payment: Payment,
    terminal: Any,
    *,
    key: str,
    digest: str,
    nonce: str,
    operation: str,
    status_code: int,
    request: HttpRequest | None,
    batch: WriteBatch,
    fields: tuple[str, ...] = (),
) -> Answer:
    payment.reasons = ["payment_password_locked"]
    payment_transition(
        payment,
        PaymentStatus.DECLINED,
        actor=actor_label(terminal),
        reason="payment_password_locked",
        request=request,
        fields=("reasons", *fields),
        batch=batch,
    )
    answer = Answer(status_code, payment_answer(payment), payment=payment)
    idempotency_store(
        terminal=terminal,
        key=key,
        operation=operation,
        digest=digest,
        nonce=nonce,
        answer=answer,
        batch=batch,
    )
    return answer


def terminal_payment(terminal: Any, payment_public_id: Any, *, lock: bool) -> Payment:
    """The merchant's payment (404 for another merchant's, as for none)."""
    try:
        public_id = uuid.UUID(str(payment_public_id))
    except ValueError:
        raise PaymentError("payment_not_found", _("No such payment."), status_code=404) from None
    rows = Payment.objects.for_merchant(terminal.merchant).select_related(
        "payer", "terminal", "merchant"
    )
    if lock:
        rows = rows.select_for_update(of=("self",))
    payment = rows.filter(public_id=public_id).first()
    if payment is None:
        raise PaymentError("payment_not_found", _("No such payment."), status_code=404)
    return payment


def payment_confirm(
    *,
    terminal: Any,
    payment_public_id: Any,
    password_sealed: str,
    idempotency_key: str,
    digest: str,
    nonce: str = "",
    request: HttpRequest | None = None,
) -> Answer:
    """The step-up: the payer's payment password, sealed to the server's
    key. Right: risk decides again (knowing the password was checked) and
    the payment completes, is held or declined. Wrong: counted toward the
    payer's lockout (403 payment_password_wrong); the lockout declines it."""

    def attempt() -> Answer:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        with transaction.atomic(durable=True):
            replay = idempotency_claim(
                terminal=terminal, key=idempotency_key, digest=digest, nonce=nonce
            )
            if replay is not None:
                return replay
            payment = terminal_payment(terminal, payment_public_id, lock=True)
            if payment.status != PaymentStatus.AWAITING_PASSWORD:
                raise PaymentError(
                    "payment_not_awaiting_password",
                    _("This payment is %(status)s; it awaits no password.")
                    % {"status": payment.status},
                    status_code=409,
                )
            try:
                password = secret_open(password_sealed)
            except SecretUndecryptable:
                raise PaymentError(
                    "secret_undecryptable",
                    _("The sealed password cannot be opened with the server's key."),
                    field="password_sealed",
                ) from None
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
                    _("The payer has not set a payment password."),
                    status_code=409,
                ) from None
            finally:
                del password
            batch = WriteBatch()
            common = {"key": idempotency_key, "digest": digest, "nonce": nonce}
            if not ok:
                risk_password_failure_record(payer_id=payment.payer_id)
                payment.password_failures += 1
                if locked or payment_password_locked_now(payment):
                    answer = _decline_password_locked(
                        payment, terminal, operation="payment.confirm", status_code=200,
                        request=request, batch=batch, fields=("password_failures",), **common,
                    )  # fmt: skip
                else:
                    batch.update(payment, ["password_failures"])
                    body = {
                        "error": {
                            "code": "payment_password_wrong",
                            "message": _("Wrong payment password."),
                            "param": "password_sealed",
                        },
                        "payment": payment_answer(payment),
                    }
                    answer = Answer(403, body, payment=payment)
                    idempotency_store(
                        terminal=terminal, operation="payment.confirm", answer=answer,
                        batch=batch, **common,
                    )  # fmt: skip
                batch.execute()
                return answer
            ctx, decision = _decide(payment, terminal, password_verified=True, timings=timings)
            funds = payment_funds_read(
                payer_id=payment.payer_id,
                merchant_id=terminal.merchant_id,
                currency=payment.currency,
            )
            answer = _settle(
                payment,
                terminal,
                ctx,
                decision,
                funds,
                operation="payment.confirm",
                status_code=200,
                request=request,
                timings=timings,
                batch=batch,
                **common,
            )
        return _committed(answer, started)

    return _retrying(attempt)


def payment_password_locked_now(payment: Payment) -> bool:
    return payment_password_is_locked(payment.payer)

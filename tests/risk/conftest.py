"""Risk test helpers.

Two ways to pay:
- `till` (the evidence): a real payment through the signed terminal API
  (POST /api/v1/terminal/payments to pytest-django's live_server, from a
  TerminalClient activated over HTTP, with a fresh payment code), answering
  with the API's status and reasons and the stored RiskDecisionRecord.
- `pay(ctx)` (engine level): decides a PaymentContext through the engine and
  records the result like the payment service does; for the pure-engine
  properties (replay, detectors over many payers) that need no terminal.

Risk reads "now" through apps.risk.clock.risk_now; the autouse `risk_clock`
pins it (for the live server's thread too: it is the same process) to noon
in Shanghai today, so time-dependent rules never depend on when CI runs and
"ten minutes later" is a clock move, not a sleep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

import tests.transactions.conftest as _pos_cast
from apps.risk.detectors import risk_payment_detectors_sweep
from apps.risk.engine import (
    PaymentContext,
    PaymentOutcome,
    RiskDecision,
    risk_decide,
    risk_record_payment,
)
from apps.risk.models import Outcome, RiskDecisionRecord
from apps.risk.rules import LOCAL_TZ
from tests.transactions.pos import pay as pos_pay

# The POS cast of the payments tests, reused as is: `shop` (Shanghai),
# `pos` (its terminal, activated over real HTTP, bind radius 300 m),
# `operator` and `supervisor` (with transaction passwords).
shop = _pos_cast.shop
pos = _pos_cast.pos
operator = _pos_cast.operator
supervisor = _pos_cast.supervisor

BEIJING = (39.908700, 116.397500)  # ShopFactory's default shop
SHANGHAI = (31.230400, 121.473700)  # the `shop` fixture's
# 12:00 in Asia/Shanghai today: inside the default shop hours (08:00-22:00),
# not night, and close enough to the real clock that anything compared with
# it (list expiries, hold expiries) behaves as it would in production.
NOON = datetime.combine(timezone.now().astimezone(LOCAL_TZ).date(), time(12), LOCAL_TZ).astimezone(
    UTC
)


def local(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """Today's (plus `days`) hour:minute in Shanghai, as an aware UTC time."""
    day = NOON.astimezone(LOCAL_TZ).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), LOCAL_TZ).astimezone(UTC)


_FINAL = {
    Outcome.APPROVE: PaymentOutcome.APPROVED,
    Outcome.HOLD: PaymentOutcome.HELD,
    Outcome.DECLINE: PaymentOutcome.DECLINED,
}


def make_ctx(merchant, **overrides) -> PaymentContext:
    fields = {
        "payer_id": 1001,
        "payer_account_class": "III",
        "merchant_id": merchant.pk,
        "merchant_mcc": merchant.mcc,
        "terminal_id": 501,
        "shop_latitude": BEIJING[0],
        "shop_longitude": BEIJING[1],
        "shop_radius_m": 200,
        "shop_opens_at": time(8, 0),
        "shop_closes_at": time(22, 0),
        "amount": 10_000,
        "currency": "CNY",
        "latitude": BEIJING[0],
        "longitude": BEIJING[1],
        "occurred_at": NOON,
        # Most rule tests isolate one rule; the password-free rule's tests turn this off.
        "password_verified": True,
    }
    fields.update(overrides)
    return PaymentContext(**fields)


@dataclass
class Paid:
    decision: RiskDecision
    outcome: str
    reasons: list[str]


class EngineDriver:
    """Decides through the engine and records the result the way the payment
    service will: approved / held / declined; a step-up is left pending."""

    def __init__(self, capture) -> None:
        self.capture = capture

    def __call__(self, ctx: PaymentContext, *, final: str | None = None) -> Paid:
        with self.capture(execute=True):
            decision = risk_decide(ctx=ctx)
            result = final or _FINAL.get(decision.outcome)
            if result is not None:
                risk_record_payment(ctx=ctx, decision=decision, outcome=result)
        # As the scheduled sweep would, seconds later.
        risk_payment_detectors_sweep()
        return Paid(decision=decision, outcome=decision.outcome, reasons=decision.reasons)


class RiskClock:
    """The time risk decides at, pinned for the whole process."""

    def __init__(self, at: datetime) -> None:
        self.now = at

    def set(self, at: datetime) -> None:
        self.now = at

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def risk_clock(monkeypatch):
    from apps.risk import clock

    pinned = RiskClock(NOON)
    monkeypatch.setattr(clock, "risk_now", lambda: pinned.now)
    return pinned


@pytest.fixture(autouse=True)
def _fresh_risk_process_state():
    # A test's database changes roll back without signals: drop this
    # process's cached rule configuration and reporting throttles.
    import apps.risk.config as config
    import apps.risk.engine as engine

    config._snapshot = None
    engine._last_down_report = 0.0
    yield
    config._snapshot = None


@pytest.fixture
def pay(db, django_capture_on_commit_callbacks):
    return EngineDriver(django_capture_on_commit_callbacks)


@pytest.fixture
def ctx(merchant):
    def build(**overrides) -> PaymentContext:
        return make_ctx(merchant, **overrides)

    return build


# --- through the real payment API -------------------------------------------------


@dataclass
class Answered:
    """A payment's answer from the API and the decision risk stored for it."""

    http_status: int
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return self.body["status"]

    @property
    def reasons(self) -> list[str]:
        return self.body["reasons"]

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def record(self) -> RiskDecisionRecord:
        return RiskDecisionRecord.objects.get(public_id=self.body["risk_decision_id"])

    def hit(self, rule_code: str) -> dict[str, Any]:
        """The stored hit of `rule_code` (its values, version, shadow flag)."""
        found = [h for h in self.record.hits if h["code"] == rule_code]
        assert found, f"{rule_code} not among {[h['code'] for h in self.record.hits]}"
        return found[0]


class Till:
    """Pays through the signed terminal API like a cashier does: a fresh
    payment code of the payer, the operator, the terminal's coordinates."""

    def __init__(self, pos, operator, clock: RiskClock) -> None:
        self.pos, self.operator, self.clock = pos, operator, clock

    def __call__(
        self,
        payer,
        amount: int,
        *,
        at: datetime | None = None,
        where: tuple[float, float] | None = SHANGHAI,
        pos=None,
    ) -> Answered:
        if at is not None:
            self.clock.set(at)
        location = (
            {"latitude": f"{where[0]:.6f}", "longitude": f"{where[1]:.6f}"}
            if where is not None
            else {"latitude": None, "longitude": None}
        )
        response = pos_pay(pos or self.pos, payer, self.operator, amount, **location)
        assert response.status_code == 201, response.text
        return Answered(response.status_code, response.json())

    def confirm(self, answered: Answered, password: str, *, pos=None) -> Answered:
        """The step-up: the payer's payment password, sealed to the server."""
        terminal = pos or self.pos
        response = terminal.post(
            f"/api/v1/terminal/payments/{answered.id}/confirm",
            {"password_sealed": terminal.seal(password)},
            idempotency_key=uuid.uuid4().hex,
        )
        assert response.status_code in (200, 403), response.text
        body = response.json()
        return Answered(response.status_code, body.get("payment", body))


@pytest.fixture
def till(pos, operator, risk_clock):
    return Till(pos, operator, risk_clock)


def activated_terminal(live_server, shop, state_path, *, serial: str, actor, radius_m: int = 300):
    """Another activated TerminalClient of `shop`'s merchant (register, then
    activate over HTTP), for payments at a second place."""
    from apps.terminals.client import TerminalClient
    from apps.terminals.services import terminal_register

    _terminal, code = terminal_register(
        merchant=shop.merchant,
        shop=shop,
        serial_number=serial,
        model="P2",
        bind_radius_m=radius_m,
        actor=actor,
    )
    client = TerminalClient(live_server.url, state_path)
    client.activate(code)
    return client


@pytest.fixture
def beijing_pos(live_server, merchant, owner, tmp_path):
    """A terminal of the same merchant at a shop in Beijing."""
    from tests.accounts.factories import ShopFactory

    shop = ShopFactory(merchant=merchant, latitude=str(BEIJING[0]), longitude=str(BEIJING[1]))
    return activated_terminal(
        live_server, shop, tmp_path / "beijing.json", serial="SN-BJ-1", actor=owner
    )


def payer_with(fen: int, account_class: str = "III"):
    """A payer with `fen` in the wallet (topped up through the ledger)."""
    from tests.transactions.factories import funded_payer

    return funded_payer(fen, account_class=account_class)


__all__ = ["BEIJING", "NOON", "SHANGHAI", "local", "make_ctx", "payer_with", "replace"]


def held_payment_case(
    *, amount: int, payer_funds: int, merchant: Any = None, title: str = "held payment"
) -> tuple[Any, Any, Any]:
    """(payer, merchant, case): a funded payer's payment of `amount` at a
    0.38% merchant (or `merchant`), its money on hold and a hold case open."""
    from apps.core.money import Money
    from apps.risk.models import RiskCase
    from apps.risk.services import risk_case_open
    from apps.transactions.services import ledger_hold_place
    from tests.transactions.factories import funded_payer, merchant_with_rate

    payer = funded_payer(payer_funds)
    merchant = merchant or merchant_with_rate(38)
    payment_id = uuid.uuid4()
    entry = ledger_hold_place(
        payer=payer,
        merchant=merchant,
        amount=Money(amount),
        event=("transactions.payment", str(payment_id)),
    )
    case = risk_case_open(
        kind=RiskCase.Kind.PAYMENT_HOLD,
        title=title,
        merchant=merchant,
        payment_public_id=payment_id,
        hold_entry_public_id=entry.public_id,
        payer_id=payer.pk,
        amount=amount,
    )
    return payer, merchant, case

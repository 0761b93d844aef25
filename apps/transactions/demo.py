"""Demo data of the ledger (seed_demo's DEMO_SEEDERS entry)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings

from apps.accounts.models import Payer
from apps.core.money import Money
from apps.risk.models import MonitorRun
from apps.transactions.models import EntryKind, JournalEntry
from apps.transactions.monitoring import ledger_balance_monitor_run
from apps.transactions.services import wallet_top_up

DEMO_FUNDING = Money(500_00)


def demo_wallets_seed(stdout) -> None:  # type: ignore[no-untyped-def]
    """Funds every verified payer's wallet once (¥500.00), through the real
    top-up service. The idempotency key makes a second run a no-op."""
    funded = 0
    for payer in Payer.objects.exclude(account_class=Payer.AccountClass.UNVERIFIED).order_by("pk"):
        key = f"demo-funding:{payer.public_id}"
        if JournalEntry.objects.filter(kind=EntryKind.TOP_UP, idempotency_key=key).exists():
            continue
        wallet_top_up(
            payer=payer,
            amount=DEMO_FUNDING,
            reason="demo data: simulated bank funding",
            actor="system:seed_demo",
            idempotency_key=key,
        )
        funded += 1
    stdout.write(f"  demo wallets: {funded} funded with {DEMO_FUNDING.format()} each")


DEMO_SIM_SERIAL = "DEMO-SIM-1"
DEMO_SIM_PAYERS = 10
DEMO_PIN = "135790"
DEMO_PAYMENT_PASSWORD = "802461"  # noqa: S105 - demo data, documented in the README
DEMO_SIM_PAYMENTS = 24


def _demo_sim_payers(compliance: Any) -> list[Payer]:
    """Ten simulated wallet holders with approved KYC, a payment password
    and ¥2,000 each (created once, through the accounts and ledger services)."""
    import datetime

    from apps.accounts import services as accounts
    from apps.accounts.demo import _person
    from apps.accounts.models import KycApplication, PaymentPassword, User

    payers = []
    for n in range(1, DEMO_SIM_PAYERS + 1):
        email = f"sim-payer{n}@anfu.test"
        user = User.objects.filter(email=email).first()
        payer = getattr(user, "payer", None) if user else None
        if payer is None:
            payer = accounts.payer_register(
                email=email, password=uuid.uuid4().hex, display_name=f"模拟顾客{n}"
            )
        if not KycApplication.objects.filter(user=payer.user).exists():
            kyc = accounts.payer_kyc_submit(
                payer=payer, person=_person(email, f"测试顾客{n}", datetime.date(1990, 3, n))
            )
            accounts.kyc_approve(
                kyc=kyc,
                actor=compliance,
                reason="demo data",
                account_class=Payer.AccountClass.CLASS_II,
            )
            payer.refresh_from_db()
        if not PaymentPassword.objects.filter(payer=payer).exists():
            accounts.payment_password_set(
                payer=payer, password=DEMO_PAYMENT_PASSWORD, otp_verified=True
            )
        key = f"demo-sim-funding:{payer.public_id}"
        if not JournalEntry.objects.filter(kind=EntryKind.TOP_UP, idempotency_key=key).exists():
            wallet_top_up(
                payer=payer,
                amount=Money(2_000_00),
                reason="demo data: simulated bank funding",
                actor="system:seed_demo",
                idempotency_key=key,
            )
        payers.append(payer)
    return payers


def demo_payments_seed(stdout) -> None:  # type: ignore[no-untyped-def]
    """A morning of payments at the Lime Coffee demo shop so the portal
    looks alive: a second demo terminal is activated and driven through the
    real signed terminal API, in-process (apps.transactions.simulator).
    Skipped once that terminal has payments (idempotent)."""
    from apps.accounts.models import Membership, OperatorPin, Shop, User
    from apps.accounts.services import operator_pin_set
    from apps.terminals.client import TerminalClient
    from apps.terminals.models import Terminal
    from apps.terminals.services import terminal_activation_code_issue, terminal_register
    from apps.transactions.models import Payment
    from apps.transactions.services import payment_code_issue
    from apps.transactions.simulator import InProcessAdapter, simulate_day

    owner = (
        Membership.objects.select_related("merchant", "user")
        .filter(user__email="owner@lime.test", role="owner")
        .first()
    )
    compliance = User.objects.filter(is_staff=True).order_by("pk").first()
    if owner is None or compliance is None or owner.merchant.status != "active":
        return
    merchant = owner.merchant
    terminal = Terminal.objects.for_merchant(merchant).filter(serial_number=DEMO_SIM_SERIAL).first()
    if terminal is not None and Payment.objects.filter(terminal=terminal).exists():
        return
    shop = Shop.objects.for_merchant(merchant).order_by("pk").first()
    if shop is None:
        return
    if terminal is None:
        terminal, code = terminal_register(
            merchant=merchant,
            shop=shop,
            serial_number=DEMO_SIM_SERIAL,
            model="Simulator",
            actor=owner.user,
        )
    else:
        code = terminal_activation_code_issue(terminal=terminal, actor=owner.user)
    if not OperatorPin.objects.filter(membership=owner).exists():
        operator_pin_set(membership=owner, pin=DEMO_PIN, actor=owner.user)
    payers = _demo_sim_payers(compliance)
    base_url = _in_process_base_url()
    client = TerminalClient(base_url)
    client.session.mount(base_url, InProcessAdapter())
    client.activate(code)
    stats = simulate_day(
        client,
        payers=payers,
        code_for=lambda payer: payment_code_issue(payer=payer).code,
        operator_id=str(owner.public_id),
        supervisor_id=str(owner.public_id),
        supervisor_pin=DEMO_PIN,
        payment_password=DEMO_PAYMENT_PASSWORD,
        count=DEMO_SIM_PAYMENTS,
        seed=20261129,
    )
    stdout.write(
        f"  demo payments: {stats.payments} at {DEMO_SIM_SERIAL} ({stats.completed} completed, "
        f"{stats.held} held, {stats.declined} declined, {stats.refunds} refunds, "
        f"{stats.reversals} reversals; batch {'matched' if stats.batch.get('matched') else 'mismatch'})"
    )


def demo_monitor_seed(stdout) -> None:  # type: ignore[no-untyped-def]
    """A first balance-monitor run, for the risk dashboard."""
    if not MonitorRun.objects.exists():
        ledger_balance_monitor_run()
        stdout.write("  ledger: first balance-monitor run done")


def _in_process_base_url() -> str:
    """A URL the application accepts from itself: a host that ALLOWED_HOSTS
    lists (with DEBUG off it has no default) and https where plain http is
    redirected, so the demo also seeds a production-like instance."""
    hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS if h not in {"*", ""}]
    scheme = "https" if settings.SECURE_SSL_REDIRECT else "http"
    return f"{scheme}://{hosts[0] if hosts else '127.0.0.1'}"

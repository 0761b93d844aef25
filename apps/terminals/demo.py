"""Demo seed: one terminal at the Lime Coffee demo shop, waiting to be
activated with the POS simulator (development only; see seed_demo)."""

from __future__ import annotations

from typing import Any

from apps.accounts.models import Membership, Shop
from apps.terminals.models import Terminal
from apps.terminals.services import terminal_activation_code_issue, terminal_register

DEMO_SERIAL = "DEMO-POS-1"


def demo_terminals_seed(stdout: Any) -> None:
    owner = (
        Membership.objects.select_related("merchant", "user")
        .filter(user__email="owner@lime.test", role="owner")
        .first()
    )
    if owner is None:
        return
    merchant = owner.merchant
    terminal = Terminal.objects.for_merchant(merchant).filter(serial_number=DEMO_SERIAL).first()
    if terminal is not None and terminal.status != Terminal.Status.PENDING:
        return  # already activated (or retired): nothing to do
    if terminal is None:
        shop = Shop.objects.for_merchant(merchant).order_by("pk").first()
        if shop is None:
            return
        terminal, code = terminal_register(
            merchant=merchant,
            shop=shop,
            serial_number=DEMO_SERIAL,
            model="Simulator",
            actor=owner.user,
        )
    else:
        code = terminal_activation_code_issue(terminal=terminal, actor=owner.user)
    stdout.write(
        f"  demo terminal {DEMO_SERIAL}: DEBUG=1 .venv/bin/python manage.py pos_simulator "
        f"--url http://127.0.0.1:8000 --state var/pos.json activate {code}   (valid 15 minutes)"
    )

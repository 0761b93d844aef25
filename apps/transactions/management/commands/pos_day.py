"""A realistic day of payments from a simulated POS terminal, through the
running server's signed API (real HTTP):

    manage.py pos_simulator --url http://127.0.0.1:8000 --state var/pos.json activate <code>
    manage.py pos_day --state var/pos.json --operator <membership id> --pin 135790 --count 200

The payers' wallets (their payment codes) are simulated here: codes are
issued for verified payers with money, as their app would show them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import Payer
from apps.terminals.client import TerminalClient
from apps.transactions.models import AccountKind, LedgerAccount
from apps.transactions.services import payment_code_issue
from apps.transactions.simulator import simulate_day


class Command(BaseCommand):
    help = "Run a day of payments (refunds, reversals, batch close) from a simulated terminal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--state", required=True, help="an activated pos_simulator state file")
        parser.add_argument("--operator", required=True, help="operator (membership) id")
        parser.add_argument("--supervisor", help="supervisor id for refunds (default: --operator)")
        parser.add_argument("--pin", required=True, help="the supervisor's transaction password")
        parser.add_argument("--payment-password", default="802461")
        parser.add_argument("--count", type=int, default=100)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--no-close", action="store_true", help="skip the batch close")

    def handle(self, *args: Any, **options: Any) -> None:
        with open(options["state"]) as handle:
            base_url = json.load(handle).get("base_url")
        if not base_url:
            raise CommandError("the state file is not of an activated terminal")
        client = TerminalClient(base_url, options["state"])
        payer_ids = LedgerAccount.objects.filter(
            kind=AccountKind.PAYER_WALLET, balance__gt=0
        ).values_list("payer_id", flat=True)
        payers = list(
            Payer.objects.filter(pk__in=payer_ids).exclude(
                account_class=Payer.AccountClass.UNVERIFIED
            )
        )
        if not payers:
            raise CommandError("no verified payer has money: run seed_demo or top up wallets")
        stats = simulate_day(
            client,
            payers=payers,
            code_for=lambda payer: payment_code_issue(payer=payer).code,
            operator_id=options["operator"],
            supervisor_id=options["supervisor"] or options["operator"],
            supervisor_pin=options["pin"],
            payment_password=options["payment_password"],
            count=options["count"],
            seed=options["seed"],
            close_batch=not options["no_close"],
        )
        self.stdout.write(json.dumps(stats.as_json(), ensure_ascii=False, indent=2))

"""Replays stored decisions of a date range under a rule set and prints how
the outcomes would have differed.

    manage.py risk_backtest --from 2026-11-01 --to 2026-11-30
    manage.py risk_backtest --from 2026-11-01 --to 2026-11-30 --rules proposal.json

Each stored decision carries the context and the inputs (state, counters,
lists) it saw, so replaying is exact and reads no other table. The rule set
is the current configuration, optionally overlaid by a JSON file of
proposed changes applied to every merchant:
    {"amount.single_limit": {"params": {"max_amount": 300000}},
     "time.outside_hours": {"mode": "disabled"}}
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.risk.config import config_snapshot
from apps.risk.context import DecisionInputs, EffectiveRule, PaymentContext
from apps.risk.decision import evaluate
from apps.risk.models import RiskDecisionRecord
from apps.risk.rules import LOCAL_TZ, RULE_CODES


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=LOCAL_TZ)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _overlay(rules: dict[str, EffectiveRule], proposal: dict) -> dict[str, EffectiveRule]:
    changed = dict(rules)
    for code, change in proposal.items():
        rule = changed[code]
        changed[code] = replace(
            rule,
            mode=change.get("mode") or rule.mode,
            params={**rule.params, **(change.get("params") or {})},
            version=f"{rule.version}+proposal",
        )
    return changed


class Command(BaseCommand):
    help = "Replays past risk decisions under the current (or a proposed) rule set."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="start", required=True, help="first day (Asia/Shanghai), YYYY-MM-DD"
        )
        parser.add_argument("--to", dest="end", required=True, help="last day, inclusive")
        parser.add_argument("--rules", help="JSON file of proposed rule changes")
        parser.add_argument("--merchant", type=int, help="only this merchant id")
        parser.add_argument("--show", type=int, default=20, help="list this many changed decisions")

    def handle(self, *args, start, end, rules=None, merchant=None, show=20, **options):
        proposal = {}
        if rules:
            with open(rules, encoding="utf-8") as fh:
                proposal = json.load(fh)
            unknown = [c for c in proposal if c not in RULE_CODES]
            if unknown:
                raise CommandError(f"unknown rules in {rules}: {unknown}")
        since, until = _day(start), _day(end) + timedelta(days=1)
        records = RiskDecisionRecord.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        if merchant:
            records = records.filter(merchant_id=merchant)
        snapshot = config_snapshot()
        matrix: Counter[tuple[str, str]] = Counter()
        changed = []
        total = 0
        started = timezone.now()
        for record in records.order_by("occurred_at", "pk").iterator(chunk_size=2000):
            ctx = PaymentContext.from_json(record.context)
            current = snapshot.effective(ctx.merchant_mcc, ctx.merchant_id)
            result = evaluate(
                ctx=ctx,
                inputs=DecisionInputs.from_json(record.inputs),
                rules=_overlay(current, proposal),
            )
            matrix[(record.outcome, result.outcome)] += 1
            total += 1
            if result.outcome != record.outcome and len(changed) < show:
                changed.append((record, result))
        self.stdout.write(
            f"{total} decisions from {start} to {end}"
            + (f" (merchant {merchant})" if merchant else "")
        )
        self.stdout.write(f"{'was':<10}{'now':<10}{'count':>8}")
        for (was, now), count in sorted(matrix.items()):
            marker = "" if was == now else "  *"
            self.stdout.write(f"{was:<10}{now:<10}{count:>8}{marker}")
        differing = sum(c for (was, now), c in matrix.items() if was != now)
        self.stdout.write(f"{differing} of {total} outcomes would differ")
        for record, result in changed:
            self.stdout.write(
                f"  {record.public_id} {record.occurred_at:%Y-%m-%d %H:%M} amount {record.amount}: "
                f"{record.outcome} {record.reasons} -> {result.outcome} {result.reasons}"
            )
        self.stdout.write(f"took {(timezone.now() - started).total_seconds():.2f} s")

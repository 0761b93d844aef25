"""Demo data for risk: one editable default layer per rule (so compliance
finds every rule in the admin with its code defaults). Idempotent."""

from __future__ import annotations

from apps.risk.models import RuleConfig
from apps.risk.rules import RULE_CODES
from apps.risk.services import risk_rule_config_set


def demo_risk_seed(stdout) -> None:  # type: ignore[no-untyped-def]
    created = 0
    for code in RULE_CODES:
        if not RuleConfig.objects.filter(rule_code=code, scope=RuleConfig.Scope.DEFAULT).exists():
            risk_rule_config_set(
                rule_code=code, params={}, actor="system:demo", reason="demo: code defaults"
            )
            created += 1
    stdout.write(
        f"  risk: {created} rule layers created; dashboard at /admin/risk/riskcase/dashboard/"
    )

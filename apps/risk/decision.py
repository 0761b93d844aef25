"""The pure half of the engine: given a payment's context, the inputs read
for it (state, counters, lists) and a rule configuration, which rules trip
and what the outcome is. No I/O here, so a stored decision can be replayed
exactly (the backtest does) and the rules can be tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.risk.context import DecisionInputs, EffectiveRule, PaymentContext, RuleHit
from apps.risk.models import OUTCOME_SEVERITY, Outcome, RuleMode
from apps.risk.rules import RULES, SCORE_THRESHOLDS


@dataclass(frozen=True)
class Evaluation:
    outcome: str
    score: int
    reasons: list[str]
    hits: list[RuleHit]
    shadow_hits: list[RuleHit]
    skipped: list[str]
    rule_versions: dict[str, str]


def evaluate(
    *, ctx: PaymentContext, inputs: DecisionInputs, rules: dict[str, EffectiveRule]
) -> Evaluation:
    """Runs every configured rule. The outcome is the most severe of the
    direct outcomes of enabled hits and of the total score against the
    thresholds; shadow hits are recorded but change nothing."""
    hits: list[RuleHit] = []
    shadow_hits: list[RuleHit] = []
    skipped: list[str] = []
    versions: dict[str, str] = {}
    skip_all = "*" in inputs.allow_skips
    for spec in RULES.values():
        rule = rules.get(spec.code)
        if rule is None or rule.mode == RuleMode.DISABLED:
            continue
        versions[spec.code] = rule.version
        # Allow lists never skip the block lists themselves.
        if spec.code in inputs.allow_skips or (skip_all and not spec.code.startswith("list.")):
            skipped.append(spec.code)
            continue
        found = spec.check(ctx, inputs, rule.params)
        if found is None:
            continue
        values = dict(found)
        reason = values.pop("reason", spec.reason)
        score_override = values.pop("score", None)
        outcome = values.pop("outcome", None)
        if score_override is not None:
            outcome, score = None, int(score_override)
        else:
            outcome = outcome or rule.params.get("outcome") or None
            score = 0 if outcome else int(rule.params.get("score", 0))
        hit = RuleHit(
            code=spec.code,
            reason=reason,
            outcome=outcome,
            score=score,
            values=values,
            version=rule.version,
            shadow=rule.mode == RuleMode.SHADOW,
        )
        (shadow_hits if hit.shadow else hits).append(hit)

    thresholds_rule = rules.get(SCORE_THRESHOLDS)
    thresholds = thresholds_rule.params if thresholds_rule else {}
    if thresholds_rule:
        versions[SCORE_THRESHOLDS] = thresholds_rule.version
    score = sum(h.score for h in hits)
    outcome: str = Outcome.APPROVE
    for hit in hits:
        if (
            hit.outcome
            and OUTCOME_SEVERITY[Outcome(hit.outcome)] > OUTCOME_SEVERITY[Outcome(outcome)]
        ):
            outcome = hit.outcome
    by_score: str = Outcome.APPROVE
    for level in (Outcome.DECLINE, Outcome.HOLD, Outcome.STEP_UP):
        limit = thresholds.get(level)
        if limit is not None and score >= int(limit):
            by_score = level
            break
    if OUTCOME_SEVERITY[Outcome(by_score)] > OUTCOME_SEVERITY[Outcome(outcome)]:
        outcome = by_score
    # A step-up the payer has already passed (password verified) is satisfied.
    if outcome == Outcome.STEP_UP and ctx.password_verified:
        outcome = Outcome.APPROVE
    reasons: list[str] = []
    for hit in hits:
        if hit.reason not in reasons:
            reasons.append(hit.reason)
    if by_score != Outcome.APPROVE and "score_threshold" not in reasons:
        reasons.append("score_threshold")
    return Evaluation(
        outcome=str(outcome),
        score=score,
        reasons=reasons,
        hits=hits,
        shadow_hits=shadow_hits,
        skipped=skipped,
        rule_versions=versions,
    )

"""Writes of risk: alerts, cases and holds, lists, rule configuration.

The real-time engine's writes (risk_decide, risk_record_payment) live in
apps/risk/engine.py, the interface the payment service calls. A held
payment's money moves through apps/risk/holds.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.db import WriteBatch
from apps.risk.errors import (
    CaseLocked,
    CaseNotClaimed,
    CaseNotOpen,
    InvalidRuleConfig,
    ReasonRequired,
    SecondApproverRequired,
)
from apps.risk.holds import hold_conclude
from apps.risk.models import (
    Alert,
    ListEntry,
    RiskCase,
    RiskDecisionRecord,
    RiskHold,
    RuleConfig,
    RuleConfigVersion,
    RuleMode,
)
from apps.risk.rules import RULE_CODES, rule_defaults

logger = logging.getLogger(__name__)


# --- alerts ------------------------------------------------------------------


def _alert_email(alert_id: int) -> None:
    alert = Alert.objects.filter(pk=alert_id, emailed_at__isnull=True).first()
    if alert is None or not settings.COMPLIANCE_EMAILS:
        return
    lines = [f"{alert.title}", "", f"kind: {alert.kind}", f"severity: {alert.severity}"]
    lines += [f"{k}: {v}" for k, v in sorted((alert.detail or {}).items())]
    try:
        send_mail(
            subject=f"[Anfu {alert.severity.upper()}] {alert.title}"[:200],
            message="\n".join(lines),
            from_email=None,
            recipient_list=list(settings.COMPLIANCE_EMAILS),
        )
    except Exception:  # the alert is stored and shown in the admin either way
        logger.exception("alert email failed", extra={"alert": alert.public_id})
        return
    Alert.objects.filter(pk=alert_id).update(emailed_at=timezone.now())


def alert_raise(
    *,
    kind: str,
    severity: str,
    title: str,
    detail: dict | None = None,
    dedup_key: str,
    merchant: Any = None,
) -> Alert:
    """Stores an alert for compliance, or, when an unresolved alert with the
    same `dedup_key` exists, counts one more occurrence of it. A new alert is
    emailed to settings.COMPLIANCE_EMAILS after commit; repeats are not."""
    if severity not in Alert.Severity.values:
        raise ValueError(f"unknown severity {severity!r}")
    dedup_key = dedup_key[:200]
    now = timezone.now()
    with transaction.atomic():
        existing = (
            Alert.objects.select_for_update()
            .exclude(status=Alert.Status.RESOLVED)
            .filter(dedup_key=dedup_key)
            .first()
        )
        if existing is not None:
            rank = {Alert.Severity.INFO: 0, Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}
            worse = rank[Alert.Severity(severity)] > rank[Alert.Severity(existing.severity)]
            Alert.objects.filter(pk=existing.pk).update(
                occurrences=F("occurrences") + 1,
                last_seen_at=now,
                detail=detail or existing.detail,
                # A repeat that is worse escalates the alert (and is mailed again).
                severity=severity if worse else existing.severity,
                emailed_at=None if worse else existing.emailed_at,
            )
            if worse:
                transaction.on_commit(lambda: _alert_email(existing.pk))
            existing.refresh_from_db()
            return existing
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    kind=kind,
                    severity=severity,
                    title=title[:200],
                    detail=detail or {},
                    dedup_key=dedup_key,
                    merchant=merchant,
                    first_seen_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            # A concurrent raise of the same key won the insert: count on it.
            Alert.objects.exclude(status=Alert.Status.RESOLVED).filter(dedup_key=dedup_key).update(
                occurrences=F("occurrences") + 1, last_seen_at=now
            )
            return Alert.objects.exclude(status=Alert.Status.RESOLVED).get(dedup_key=dedup_key)
        audit_record(
            action="risk.alert_raised",
            merchant=merchant,
            target=alert,
            data={"kind": kind, "severity": severity, "dedup_key": dedup_key},
        )
        transaction.on_commit(lambda: _alert_email(alert.pk))
    logger.warning("risk alert", extra={"kind": kind, "severity": severity})
    return alert


def alert_resolve(
    *, alert: Alert, actor: Any, note: str = "", request: HttpRequest | None = None
) -> Alert:
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(
            status=Alert.Status.RESOLVED, resolved_at=timezone.now(), resolved_by=str(actor)[:200]
        )
        audit_record(
            action="risk.alert_resolved",
            actor=actor,
            target=alert,
            data={"note": note},
            request=request,
        )
    alert.refresh_from_db()
    return alert


def alert_acknowledge(*, alert: Alert, actor: Any, request: HttpRequest | None = None) -> Alert:
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk, status=Alert.Status.OPEN).update(
            status=Alert.Status.ACKNOWLEDGED
        )
        audit_record(action="risk.alert_acknowledged", actor=actor, target=alert, request=request)
    alert.refresh_from_db()
    return alert


# --- cases and holds ---------------------------------------------------------


def risk_case_open(
    *,
    kind: str,
    title: str,
    merchant: Any = None,
    decision: RiskDecisionRecord | None = None,
    decision_public_id: Any = None,
    payment_public_id: Any = None,
    hold_entry_public_id: Any = None,
    payer_id: int | None = None,
    ledger_account_id: int | None = None,
    amount: int = 0,
    currency: str = "CNY",
    detail: dict | None = None,
    actor: Any = None,
    batch: WriteBatch | None = None,
) -> RiskCase:
    """Opens a case. For a held payment (kind payment_hold) call it inside
    the payment's transaction, with the hold entry, with the payment's and
    the hold entry's public ids: it also creates the hold the merchant
    sees, and the hold expires (money back to the payer) after
    settings.RISK_HOLD_EXPIRY_HOURS unless compliance decides first.
    `decision`: the decision record (perhaps still unsaved in `batch`),
    else found by `decision_public_id`. With `batch` (the payment's), the
    rows and the audit record are left in it."""
    if decision is None and decision_public_id is not None:
        decision = RiskDecisionRecord.objects.filter(public_id=decision_public_id).first()
    expires_at = None
    if kind == RiskCase.Kind.PAYMENT_HOLD:
        if merchant is None or payment_public_id is None or hold_entry_public_id is None:
            raise ValueError("a payment hold case needs the merchant, payment and hold entry")
        expires_at = timezone.now() + timedelta(hours=settings.RISK_HOLD_EXPIRY_HOURS)
    case = RiskCase(
        kind=kind,
        title=title[:200],
        merchant=merchant,
        decision=decision,
        payment_public_id=payment_public_id,
        hold_entry_public_id=hold_entry_public_id,
        payer_id=payer_id if payer_id is not None else (decision.payer_id if decision else None),
        ledger_account_id=ledger_account_id,
        amount=amount,
        currency=currency,
        detail=detail or {},
        expires_at=expires_at,
    )
    hold = None
    if kind == RiskCase.Kind.PAYMENT_HOLD:
        hold = RiskHold(
            merchant=merchant,
            case=case,
            payment_public_id=payment_public_id,
            amount=amount,
            currency=currency,
        )
    own = batch is None
    with transaction.atomic():
        batch = batch or WriteBatch()
        batch.insert(case)
        if hold is not None:
            batch.insert(hold)
        audit_record(
            action="risk.case_opened",
            actor=actor,
            merchant=merchant,
            target=case,
            data={"kind": kind, "amount": amount, "payment": str(payment_public_id or "")},
            batch=batch,
        )
        if own:
            batch.execute()
    return case


def _locked_case(case: RiskCase) -> RiskCase:
    return RiskCase.objects.select_for_update().get(pk=case.pk)


def risk_case_assign(
    *, case: RiskCase, assignee: Any, actor: Any, request: HttpRequest | None = None
) -> RiskCase:
    with transaction.atomic():
        case = _locked_case(case)
        if not case.is_open:
            raise CaseNotOpen()
        case.assigned_to = assignee
        case.save(update_fields=["assigned_to"])
        audit_record(
            action="risk.case_assigned",
            actor=actor,
            merchant=case.merchant,
            target=case,
            data={"assignee": str(getattr(assignee, "public_id", ""))},
            request=request,
        )
    return case


def risk_case_claim(
    *, case: RiskCase, reviewer: Any, request: HttpRequest | None = None
) -> RiskCase:
    """Locks the case for `reviewer` for settings.RISK_CASE_LOCK_MINUTES, so
    two reviewers never decide the same case at once."""
    now = timezone.now()
    with transaction.atomic():
        case = _locked_case(case)
        if not case.is_open:
            raise CaseNotOpen()
        if (
            case.locked_by_id not in (None, reviewer.pk)
            and case.locked_until
            and case.locked_until > now
        ):
            raise CaseLocked(
                f"{case.locked_by} is reviewing this case until {case.locked_until:%H:%M}"
            )
        case.locked_by = reviewer
        case.locked_until = now + timedelta(minutes=settings.RISK_CASE_LOCK_MINUTES)
        if case.assigned_to_id is None:
            case.assigned_to = reviewer
        case.save(update_fields=["locked_by", "locked_until", "assigned_to"])
        audit_record(
            action="risk.case_claimed",
            actor=reviewer,
            merchant=case.merchant,
            target=case,
            request=request,
        )
    return case


def risk_case_release_lock(
    *, case: RiskCase, reviewer: Any, request: HttpRequest | None = None
) -> RiskCase:
    with transaction.atomic():
        case = _locked_case(case)
        if case.locked_by_id == reviewer.pk:
            case.locked_by, case.locked_until = None, None
            case.save(update_fields=["locked_by", "locked_until"])
            audit_record(
                action="risk.case_unlocked",
                actor=reviewer,
                merchant=case.merchant,
                target=case,
                request=request,
            )
    return case


def _check_reviewer(case: RiskCase, reviewer: Any, reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired()
    if not case.is_open:
        raise CaseNotOpen()
    if (
        case.locked_by_id != reviewer.pk
        or case.locked_until is None
        or case.locked_until <= timezone.now()
    ):
        raise CaseNotClaimed()
    return reason


def _conclude_hold(
    case: RiskCase, *, result: str, actor: Any, reason: str, request: HttpRequest | None
) -> None:
    """Has the ledger move a held payment's money (holds.py) and closes the
    hold. Inside the caller's transaction, after its audit record."""
    hold_conclude(
        hold_entry_public_id=case.hold_entry_public_id,
        payment_public_id=case.payment_public_id,
        result=str(result),
        case_public_id=case.public_id,
        actor=actor,
        reason=reason,
    )
    RiskHold.objects.filter(case=case).update(status=result, resolved_at=timezone.now())


def _case_decided(case: RiskCase, *, status: str, reviewer: Any, reason: str, at: Any) -> None:
    """Records a final decision on a locked case and releases its review lock."""
    case.status = status
    case.decided_by, case.decided_at, case.decision_reason = reviewer, at, reason[:1000]
    case.locked_by, case.locked_until = None, None
    case.save(
        update_fields=[
            "status",
            "decided_by",
            "decided_at",
            "decision_reason",
            "locked_by",
            "locked_until",
        ]
    )


def risk_case_approve(
    *, case: RiskCase, reviewer: Any, reason: str, request: HttpRequest | None = None
) -> RiskCase:
    """Approves a case. A held payment is released to the merchant; at or
    above settings.RISK_SECOND_APPROVER_AMOUNT the first approval only
    records itself and a different reviewer must approve as well."""
    with transaction.atomic(durable=True):
        case = _locked_case(case)
        reason = _check_reviewer(case, reviewer, reason)
        now = timezone.now()
        needs_second = (
            case.kind == RiskCase.Kind.PAYMENT_HOLD
            and case.amount >= settings.RISK_SECOND_APPROVER_AMOUNT
        )
        if needs_second and case.first_approved_by_id is None:
            case.first_approved_by, case.first_approved_at = reviewer, now
            case.first_approval_reason = reason[:1000]
            case.status = RiskCase.Status.AWAITING_SECOND
            case.locked_by, case.locked_until = None, None
            case.save(
                update_fields=[
                    "first_approved_by",
                    "first_approved_at",
                    "first_approval_reason",
                    "status",
                    "locked_by",
                    "locked_until",
                ]
            )
            audit_record(
                action="risk.case_first_approval",
                actor=reviewer,
                merchant=case.merchant,
                target=case,
                data={"reason": reason, "amount": case.amount},
                request=request,
            )
            return case
        if needs_second and case.first_approved_by_id == reviewer.pk:
            raise SecondApproverRequired()
        _case_decided(
            case, status=RiskCase.Status.APPROVED, reviewer=reviewer, reason=reason, at=now
        )
        audit_record(
            action="risk.case_approved",
            actor=reviewer,
            merchant=case.merchant,
            target=case,
            data={
                "reason": reason,
                "amount": case.amount,
                "first_approver": str(case.first_approved_by_id or ""),
            },
            request=request,
        )
        if case.kind == RiskCase.Kind.PAYMENT_HOLD:
            _conclude_hold(
                case,
                result=RiskHold.Status.RELEASED,
                actor=reviewer,
                reason=reason,
                request=request,
            )
    return case


def risk_case_decline(
    *,
    case: RiskCase,
    reviewer: Any,
    reason: str,
    block_payer_days: int | None = None,
    request: HttpRequest | None = None,
) -> RiskCase:
    """Declines a case. A held payment returns to the payer (one reviewer is
    enough: returning money is the safe direction). Optionally blocks the
    payer for `block_payer_days`, the entry naming this case."""
    with transaction.atomic(durable=True):
        case = _locked_case(case)
        reason = _check_reviewer(case, reviewer, reason)
        now = timezone.now()
        _case_decided(
            case, status=RiskCase.Status.DECLINED, reviewer=reviewer, reason=reason, at=now
        )
        audit_record(
            action="risk.case_declined",
            actor=reviewer,
            merchant=case.merchant,
            target=case,
            data={"reason": reason, "amount": case.amount},
            request=request,
        )
        if block_payer_days and case.payer_id:
            _list_entry_create(
                kind=ListEntry.Kind.BLOCK,
                subject_type=ListEntry.Subject.PAYER,
                subject_id=case.payer_id,
                reason=f"case {case.public_id}: {reason}"[:500],
                expires_at=now + timedelta(days=block_payer_days),
                source_case=case,
                actor=reviewer,
                request=request,
            )
        if case.kind == RiskCase.Kind.PAYMENT_HOLD:
            _conclude_hold(
                case,
                result=RiskHold.Status.RETURNED,
                actor=reviewer,
                reason=reason,
                request=request,
            )
    return case


def risk_case_close(
    *, case: RiskCase, reviewer: Any, reason: str, request: HttpRequest | None = None
) -> RiskCase:
    """Closes a case that holds no money (a balance drift, a detector
    finding) after investigation. A frozen account stays frozen: unfreezing
    is a separate, audited ledger action (ledger_account_freeze)."""
    with transaction.atomic(durable=True):
        case = _locked_case(case)
        reason = _check_reviewer(case, reviewer, reason)
        if case.kind == RiskCase.Kind.PAYMENT_HOLD:
            raise CaseNotOpen("a held payment is approved or declined, not closed")
        _case_decided(
            case,
            status=RiskCase.Status.CLOSED,
            reviewer=reviewer,
            reason=reason,
            at=timezone.now(),
        )
        audit_record(
            action="risk.case_closed",
            actor=reviewer,
            merchant=case.merchant,
            target=case,
            data={"reason": reason},
            request=request,
        )
    return case


def risk_hold_expire(*, case: RiskCase, now: datetime | None = None) -> bool:
    """Returns an undecided hold's money to the payer once it expired (the
    policy: nobody decided in time). True when it expired the case."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        case = _locked_case(case)
        if (
            not case.is_open
            or case.kind != RiskCase.Kind.PAYMENT_HOLD
            or not case.expires_at
            or case.expires_at > now
        ):
            return False
        case.status = RiskCase.Status.EXPIRED
        case.decided_at, case.decision_reason = now, "expired: no decision within the policy's time"
        case.locked_by, case.locked_until = None, None
        case.save(
            update_fields=["status", "decided_at", "decision_reason", "locked_by", "locked_until"]
        )
        audit_record(
            action="risk.hold_expired",
            actor="system",
            merchant=case.merchant,
            target=case,
            data={"amount": case.amount, "expires_at": case.expires_at.isoformat()},
        )
        _conclude_hold(
            case, result=RiskHold.Status.EXPIRED, actor="system", reason="expired", request=None
        )
    return True


def risk_holds_expire(*, now: datetime | None = None) -> int:
    """Expires every overdue hold, each in its own transaction."""
    now = now or timezone.now()
    overdue = RiskCase.objects.filter(
        kind=RiskCase.Kind.PAYMENT_HOLD, status__in=RiskCase.OPEN_STATUSES, expires_at__lte=now
    ).order_by("expires_at", "pk")
    expired = 0
    for case in overdue.iterator():
        try:
            expired += risk_hold_expire(case=case, now=now)
        except Exception:
            logger.exception("hold expiry failed", extra={"case": str(case.public_id)})
    return expired


# --- lists -------------------------------------------------------------------


def _list_entry_create(*, actor: Any, request: HttpRequest | None, **fields: Any) -> ListEntry:
    skip = fields.get("skip_rules") or []
    unknown = [code for code in skip if code != "*" and code not in RULE_CODES]
    if unknown:
        raise InvalidRuleConfig(f"unknown rules {unknown}")
    entry = ListEntry.objects.create(created_by=str(actor or "system")[:200], **fields)
    audit_record(
        action="risk.list_entry_added",
        actor=actor,
        target=entry,
        data={
            "kind": entry.kind,
            "subject_type": entry.subject_type,
            "subject_id": entry.subject_id,
            "skip_rules": skip,
            "reason": entry.reason,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "source_case": str(entry.source_case.public_id) if entry.source_case else None,
        },
        request=request,
    )
    return entry


def risk_list_entry_add(
    *,
    kind: str,
    subject_type: str,
    subject_id: int,
    reason: str,
    actor: Any,
    expires_at: datetime | None = None,
    skip_rules: list[str] | None = None,
    source_case: RiskCase | None = None,
    request: HttpRequest | None = None,
) -> ListEntry:
    if not (reason or "").strip():
        raise ReasonRequired()
    with transaction.atomic():
        return _list_entry_create(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            reason=reason.strip(),
            expires_at=expires_at,
            skip_rules=list(skip_rules or []),
            source_case=source_case,
            actor=actor,
            request=request,
        )


def risk_list_entry_revoke(
    *, entry: ListEntry, actor: Any, request: HttpRequest | None = None
) -> ListEntry:
    with transaction.atomic():
        entry.revoked_at = timezone.now()
        entry.save(update_fields=["revoked_at"])
        audit_record(action="risk.list_entry_revoked", actor=actor, target=entry, request=request)
    return entry


# --- rule configuration ------------------------------------------------------


def _validated_params(rule_code: str, params: dict) -> dict:
    defaults = rule_defaults(rule_code)
    clean: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in defaults and key not in ("outcome", "score"):
            raise InvalidRuleConfig(f"{rule_code} has no parameter {key!r}")
        if key == "outcome":
            if value not in ("", None, "step_up", "hold", "decline"):
                raise InvalidRuleConfig(
                    "outcome must be step_up, hold or decline (or empty to score)"
                )
            clean[key] = value or ""
            continue
        default = defaults.get(key, 0)
        if isinstance(default, int) and not isinstance(default, bool):
            if type(value) is not int or value < 0:
                raise InvalidRuleConfig(f"{rule_code}.{key} must be a non-negative integer")
        elif isinstance(default, str) and not isinstance(value, str):
            raise InvalidRuleConfig(f"{rule_code}.{key} must be text")
        clean[key] = value
    return clean


def risk_rule_config_set(
    *,
    rule_code: str,
    scope: str = RuleConfig.Scope.DEFAULT,
    mcc: str = "",
    merchant: Any = None,
    mode: str = "",
    params: dict | None = None,
    actor: Any,
    reason: str = "",
    request: HttpRequest | None = None,
) -> RuleConfig:
    """Creates or changes one configuration layer of a rule: validates the
    parameters against the rule's, bumps the version, keeps the version and
    audits the change (before and after). Every process's cached
    configuration refreshes (apps.risk.config)."""
    if rule_code not in RULE_CODES:
        raise InvalidRuleConfig(f"unknown rule {rule_code!r}")
    if mode not in ("", *RuleMode.values):
        raise InvalidRuleConfig(f"unknown mode {mode!r}")
    clean = _validated_params(rule_code, params or {})
    lookup: dict[str, Any] = {"rule_code": rule_code, "scope": scope}
    if scope == RuleConfig.Scope.MCC:
        if not mcc:
            raise InvalidRuleConfig("an MCC layer needs the MCC")
        lookup["mcc"] = mcc
    elif scope == RuleConfig.Scope.MERCHANT:
        if merchant is None:
            raise InvalidRuleConfig("a merchant layer needs the merchant")
        lookup["merchant"] = merchant
    with transaction.atomic():
        config = RuleConfig.objects.select_for_update().filter(**lookup).first()
        before = (
            None
            if config is None
            else {"mode": config.mode, "params": config.params, "version": config.version}
        )
        if config is None:
            config = RuleConfig(**lookup, version=1)
        else:
            config.version += 1
        config.mode, config.params = mode, clean
        config.updated_at, config.updated_by = timezone.now(), str(actor or "system")[:200]
        config.save()
        RuleConfigVersion.objects.create(
            config=config,
            version=config.version,
            mode=mode,
            params=clean,
            changed_by=config.updated_by,
            reason=reason[:500],
        )
        audit_record(
            action="risk.rule_config_changed",
            actor=actor,
            merchant=merchant,
            target=config,
            data={
                "rule": rule_code,
                "layer": config.layer_label,
                "before": before,
                "after": {"mode": mode, "params": clean, "version": config.version},
                "reason": reason,
            },
            request=request,
        )
    return config

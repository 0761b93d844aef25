"""The admin's list filters on the big tables are served by indexes: the
page query a filtered change list runs (built by the real ModelAdmin, with
its ordering) is planned as an index scan, never a sequential scan of the
table. PostgreSQL only: the plans are PostgreSQL's, read with EXPLAIN
ANALYZE after ANALYZE over a few thousand rows of a realistic mix (the
filtered value rare, as holds, declines and critical events are)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditRecord, SecurityEvent
from apps.risk.models import Alert, RiskCase, RiskDecisionRecord
from apps.transactions.models import EntryKind, JournalEntry, Payment, PaymentStatus

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL query plans"),
]

ROWS = 8000


def _mix(common: str, rare: str, every: int = 40) -> list[str]:
    """ROWS values: `rare` once in `every` rows (more than a page of them),
    `common` otherwise."""
    return [rare if i % every == 0 else common for i in range(ROWS)]


def _times() -> list:
    start = timezone.now() - timedelta(days=30)
    return [start + timedelta(minutes=5 * i) for i in range(ROWS)]


def _plan(rf, user, model, params: dict[str, str]) -> str:
    """EXPLAIN ANALYZE of the page query of `model`'s change list."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")
    request = rf.get("/", params)
    request.user = user
    changelist = admin.site._registry[model].get_changelist_instance(request)
    page = changelist.result_list
    assert page.query.high_mark  # the LIMITed page, not the whole table
    return page.explain(analyze=True)


def _uses(plan: str, index: str, table: str) -> None:
    assert f"Seq Scan on {table}" not in plan, plan
    assert index in plan, plan


def test_payments_filtered_by_status_and_the_unfiltered_list(
    rf, compliance, merchant, shop, terminal, payer
):
    Payment.objects.bulk_create(
        Payment(
            merchant=merchant,
            terminal=terminal,
            shop=shop,
            payer=payer,
            amount=1_00 + i,
            status=status,
            idempotency_key=f"k-{i}",
            created_at=at,
        )
        for i, (status, at) in enumerate(
            zip(_mix(PaymentStatus.COMPLETED, PaymentStatus.DECLINED), _times(), strict=True)
        )
    )
    table = Payment._meta.db_table
    plan = _plan(rf, compliance, Payment, {"status__exact": "declined"})
    _uses(plan, "payment_status_all_recent", table)
    assert "Sort" not in plan  # the index's order is the page's order
    _uses(_plan(rf, compliance, Payment, {}), "payment_recent", table)


def test_journal_entries_filtered_by_kind(rf, compliance):
    JournalEntry.objects.bulk_create(
        JournalEntry(kind=kind, currency="CNY", created_at=at)
        for kind, at in zip(_mix(EntryKind.PAYMENT, EntryKind.REFUND), _times(), strict=True)
    )
    plan = _plan(rf, compliance, JournalEntry, {"kind__exact": EntryKind.REFUND})
    _uses(plan, "ledger_entry_kind_recent", JournalEntry._meta.db_table)


def test_security_events_filtered_by_severity(rf, compliance):
    SecurityEvent.objects.bulk_create(
        SecurityEvent(kind="login_failed", severity=severity, created_at=at)
        for severity, at in zip(_mix("warning", "critical"), _times(), strict=True)
    )
    plan = _plan(rf, compliance, SecurityEvent, {"severity__exact": "critical"})
    _uses(plan, "secevent_severity_recent", SecurityEvent._meta.db_table)


def test_audit_records_filtered_by_action(rf, compliance):
    AuditRecord.objects.bulk_create(
        AuditRecord(
            shard=0,
            seq=i,
            created_at=at,
            action=action,
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for i, (action, at) in enumerate(
            zip(_mix("payment.completed", "kyb.approved"), _times(), strict=True)
        )
    )
    plan = _plan(rf, compliance, AuditRecord, {"action": "kyb.approved"})
    # The action column's own index (db_index=True) serves the filter.
    _uses(plan, "audit_auditrecord_action_", AuditRecord._meta.db_table)


def test_risk_decisions_filtered_by_outcome(rf, compliance, merchant):
    RiskDecisionRecord.objects.bulk_create(
        RiskDecisionRecord(
            merchant=merchant,
            occurred_at=at,
            created_at=at,
            payer_id=i % 300,
            amount=1_00,
            outcome=outcome,
        )
        for i, (outcome, at) in enumerate(zip(_mix("approve", "hold"), _times(), strict=True))
    )
    plan = _plan(rf, compliance, RiskDecisionRecord, {"outcome__exact": "hold"})
    _uses(plan, "riskdec_outcome_recent", RiskDecisionRecord._meta.db_table)


def test_alerts_and_risk_cases_filtered_by_status(rf, compliance):
    Alert.objects.bulk_create(
        Alert(
            kind="balance_drift",
            severity="warning",
            status=status,
            title="drift",
            dedup_key=f"drift:{i}",
            first_seen_at=at,
            last_seen_at=at,
        )
        for i, (status, at) in enumerate(zip(_mix("resolved", "open"), _times(), strict=True))
    )
    plan = _plan(rf, compliance, Alert, {"status__exact": "open"})
    _uses(plan, "alert_queue", Alert._meta.db_table)

    RiskCase.objects.bulk_create(
        RiskCase(
            kind=RiskCase.Kind.DETECTOR,
            status=status,
            title="split payments",
            payment_public_id=uuid.uuid4(),
            created_at=at,
        )
        for status, at in zip(_mix("closed", "open"), _times(), strict=True)
    )
    plan = _plan(rf, compliance, RiskCase, {"status__exact": "open"})
    # Either of the (status, ...) indexes: open cases are few, sorting them is cheap.
    _uses(plan, "on riskcase_", RiskCase._meta.db_table)

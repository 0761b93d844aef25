"""24-hour balance monitoring, the monitor of the monitors, and alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F
from django.utils import timezone

from apps.core.models import ScheduledRun
from apps.core.money import Money
from apps.risk.models import Alert, BalanceWatch, RiskCase
from apps.risk.monitoring import risk_monitors_monitor
from apps.risk.services import alert_raise, alert_resolve
from apps.transactions.models import AccountKind, LedgerAccount
from apps.transactions.monitoring import ledger_balance_monitor_run
from apps.transactions.services import ledger_payment_transfer
from tests.transactions.factories import funded_payer, merchant_with_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(db):
    payer = funded_payer(100_000)
    merchant = merchant_with_rate(38)
    ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(25_000), event=("test.payment", "p1")
    )
    return payer, merchant


def test_a_healthy_ledger_gives_a_clean_run(ledger):
    run = ledger_balance_monitor_run()
    assert run.ok is True
    assert run.findings == []
    assert run.stats["drifts"] == 0
    assert not Alert.objects.exists()
    assert ScheduledRun.objects.get(name="risk-balance-monitor").runs == 1
    assert BalanceWatch.objects.count() == LedgerAccount.objects.count()


def test_a_balance_edited_behind_the_systems_back_is_caught_in_one_run(
    ledger, settings, django_capture_on_commit_callbacks
):
    settings.COMPLIANCE_EMAILS = ["compliance@example.test"]
    payer, _merchant = ledger
    wallet = LedgerAccount.objects.get(kind=AccountKind.PAYER_WALLET, payer=payer)
    LedgerAccount.objects.filter(pk=wallet.pk).update(
        balance=F("balance") + 50_000
    )  # 75_000 -> 125_000

    with django_capture_on_commit_callbacks(execute=True):
        run = ledger_balance_monitor_run()

    assert run.ok is False
    assert run.stats["drifts"] == 1
    wallet.refresh_from_db()
    assert wallet.frozen is True
    assert wallet.balance == 125_000  # never auto-corrected
    case = RiskCase.objects.get(kind=RiskCase.Kind.BALANCE_DRIFT)
    assert case.ledger_account_id == wallet.pk
    assert case.is_open
    alert = Alert.objects.get(kind="balance_drift")
    assert alert.severity == "critical"
    assert alert.detail["difference"] == 50_000
    assert len(mail.outbox) == 1
    assert "Balance drift" in mail.outbox[0].subject
    # the postings were not touched: they still sum to zero
    assert not Alert.objects.filter(kind="ledger_not_zero").exists()


def test_a_second_run_does_not_open_a_second_case_or_alert(ledger):
    payer, _merchant = ledger
    LedgerAccount.objects.filter(kind=AccountKind.PAYER_WALLET, payer=payer).update(balance=1)
    ledger_balance_monitor_run()
    ledger_balance_monitor_run()
    assert RiskCase.objects.filter(kind=RiskCase.Kind.BALANCE_DRIFT).count() == 1
    alert = Alert.objects.get(kind="balance_drift")
    assert alert.occurrences == 2


def test_a_sudden_swing_raises_a_warning(ledger, settings):
    settings.RISK_SWING_FACTOR = 5
    settings.RISK_SWING_MIN_AMOUNT = 1_000
    payer, merchant = ledger
    for _ in range(3):
        ledger_balance_monitor_run()
    assert not Alert.objects.filter(kind="balance_swing").exists()
    ledger_payment_transfer(
        payer=payer, merchant=merchant, amount=Money(70_000), event=("test.payment", "p2")
    )
    run = ledger_balance_monitor_run()
    assert run.stats["swings"] >= 1
    assert Alert.objects.filter(kind="balance_swing", severity="warning").exists()
    assert run.stats["drifts"] == 0


def test_the_monitor_of_monitors_alerts_on_a_job_that_did_not_run(db):
    now = timezone.now()
    for name in (
        "core-heartbeat",
        "risk-holds-expire",
        "risk-detectors-sweep",
        "risk-payment-detectors",
    ):
        ScheduledRun.objects.create(name=name, last_run_at=now)
    ScheduledRun.objects.create(
        name="risk-balance-monitor", last_run_at=now - timedelta(minutes=30)
    )
    late = risk_monitors_monitor(now=now)
    assert late == ["risk-balance-monitor"]
    alert = Alert.objects.get(kind="monitor_missed")
    assert alert.detail["job"] == "risk-balance-monitor"


def test_a_job_that_never_ran_is_late_only_after_its_window(db):
    now = timezone.now()
    others = (
        "core-heartbeat",
        "risk-balance-monitor",
        "risk-holds-expire",
        "risk-payment-detectors",
    )

    def check(minutes: int) -> list[str]:
        at = now + timedelta(minutes=minutes)
        for name in others:  # these keep running on time
            ScheduledRun.objects.update_or_create(name=name, defaults={"last_run_at": at})
        return risk_monitors_monitor(now=at)

    assert check(0) == []  # a fresh deployment: the sweep is not yet due
    assert check(20) == []
    assert check(32) == ["risk-detectors-sweep"]
    assert Alert.objects.get(dedup_key="monitor_missed:risk-detectors-sweep").title.endswith(
        "has never run"
    )


def test_the_monitor_of_monitors_is_quiet_when_everything_ran(db):
    now = timezone.now()
    for name in (
        "core-heartbeat",
        "risk-balance-monitor",
        "risk-holds-expire",
        "risk-detectors-sweep",
        "risk-payment-detectors",
    ):
        ScheduledRun.objects.create(name=name, last_run_at=now - timedelta(seconds=15))
    assert risk_monitors_monitor(now=now) == []
    assert not Alert.objects.exists()


def test_alerts_are_deduplicated_and_emailed_once(db, settings, django_capture_on_commit_callbacks):
    settings.COMPLIANCE_EMAILS = ["a@example.test", "b@example.test"]
    with django_capture_on_commit_callbacks(execute=True):
        first = alert_raise(
            kind="backup_stale",
            severity="critical",
            title="Backup stale",
            detail={"h": 30},
            dedup_key="backup:stale",
        )
        again = alert_raise(
            kind="backup_stale",
            severity="critical",
            title="Backup stale",
            detail={"h": 31},
            dedup_key="backup:stale",
        )
    assert first.pk == again.pk
    assert again.occurrences == 2
    assert again.detail == {"h": 31}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["a@example.test", "b@example.test"]


def test_a_resolved_alert_is_raised_afresh(db, compliance):
    first = alert_raise(kind="k", severity="warning", title="t", dedup_key="same")
    alert_resolve(alert=first, actor=compliance)
    second = alert_raise(kind="k", severity="warning", title="t", dedup_key="same")
    assert second.pk != first.pk
    assert second.occurrences == 1


def test_a_worse_repeat_escalates_the_alert_and_mails_again(
    db, settings, django_capture_on_commit_callbacks
):
    settings.COMPLIANCE_EMAILS = ["a@example.test"]
    for severity in ("warning", "critical", "warning"):  # three monitoring runs
        with django_capture_on_commit_callbacks(execute=True):
            alert = alert_raise(kind="k", severity=severity, title="t", dedup_key="esc")
    alert.refresh_from_db()
    assert (alert.severity, alert.occurrences) == ("critical", 3)
    assert len(mail.outbox) == 2


def test_closing_a_drift_case_records_the_decision_and_leaves_the_account_frozen(
    ledger, compliance
):
    """A case that holds no money is closed after investigation: decided by
    its reviewer with the reason, lock released, audited; the frozen
    account stays frozen (unfreezing is its own ledger action)."""
    from apps.audit.models import AuditRecord
    from apps.risk.services import risk_case_claim, risk_case_close

    payer, _merchant = ledger
    wallet = LedgerAccount.objects.get(kind=AccountKind.PAYER_WALLET, payer=payer)
    LedgerAccount.objects.filter(pk=wallet.pk).update(balance=F("balance") + 1)
    ledger_balance_monitor_run()
    case = RiskCase.objects.get(kind=RiskCase.Kind.BALANCE_DRIFT)
    risk_case_claim(case=case, reviewer=compliance)

    risk_case_close(case=case, reviewer=compliance, reason="  test posting, reviewed  ")

    case.refresh_from_db()
    assert case.status == RiskCase.Status.CLOSED
    assert (case.decided_by, case.decision_reason) == (compliance, "test posting, reviewed")
    assert case.decided_at is not None
    assert (case.locked_by, case.locked_until) == (None, None)
    assert AuditRecord.objects.filter(
        action="risk.case_closed", target_id=str(case.public_id)
    ).exists()
    wallet.refresh_from_db()
    assert wallet.frozen is True

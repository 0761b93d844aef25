"""The compliance dashboard on the admin index: review queues with ages,
open risk cases, alerts, scheduled jobs against their schedule, backups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.backups.models import BackupRun
from apps.core.models import ScheduledRun
from apps.portal.admin_dashboard import compliance_dashboard, scheduled_jobs
from apps.risk.models import Alert, RiskCase
from tests.accounts.helpers import kyb_submit_for, otp_force_login

pytestmark = pytest.mark.django_db


def test_the_admin_index_shows_what_waits_for_compliance(client, compliance, merchant, owner):
    kyb = kyb_submit_for(merchant, owner)
    RiskCase.objects.create(
        kind=RiskCase.Kind.PAYMENT_HOLD,
        merchant=merchant,
        title="大额支付",
        amount=1_234_500,
        created_at=timezone.now() - timedelta(hours=30),
    )
    Alert.objects.create(
        kind="ledger_not_zero",
        severity="critical",
        title="Ledger does not sum to zero",
        dedup_key="x",
    )
    BackupRun.objects.create(
        trigger="scheduled", status="succeeded", started_at=timezone.now(), engine="postgresql"
    )
    otp_force_login(client, compliance)

    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    body = response.content.decode()
    assert kyb.company_name in body
    assert "大额支付" in body
    assert "¥12,345.00" in body
    assert "1 d 6 h" in body  # the case's age, flagged as late
    assert "Ledger does not sum to zero" in body
    assert reverse("admin:risk_riskcase_review", args=[RiskCase.objects.get().pk]) in body
    dash = response.context["request"]._compliance_dashboard
    assert dash["kyb"]["count"] == 1
    assert dash["cases"]["oldest"][0]["late"] is True
    assert dash["alerts"]["critical"] == 1
    assert dash["backup"]["stale"] is False


def test_the_admin_index_needs_an_otp_verified_staff_session(client, compliance, owner):
    client.force_login(compliance)  # password only, no OTP
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    client.logout()
    otp_force_login(client, owner)  # OTP but not compliance staff
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_job_that_missed_two_intervals_is_late_and_one_never_run_is_listed(settings):
    settings.CELERY_BEAT_SCHEDULE = {
        "core-heartbeat": {"task": "apps.core.tasks.heartbeat", "schedule": timedelta(minutes=5)},
        "never-ran": {"task": "apps.x.tasks.never", "schedule": timedelta(hours=1)},
    }
    now = timezone.now()
    ScheduledRun.objects.create(name="core-heartbeat", last_run_at=now - timedelta(minutes=11))

    jobs = {job.name: job for job in scheduled_jobs(now)}

    assert jobs["core-heartbeat"].late is True
    assert jobs["never-ran"].late is True
    assert jobs["never-ran"].last_run_at is None
    ScheduledRun.record("core-heartbeat")
    assert {j.name: j for j in scheduled_jobs(timezone.now())}["core-heartbeat"].late is False


def test_no_good_backup_within_the_policys_age_is_overdue():
    BackupRun.objects.create(
        trigger="scheduled",
        status="succeeded",
        started_at=timezone.now() - timedelta(hours=27),
        engine="postgresql",
    )
    BackupRun.objects.create(
        trigger="scheduled", status="failed", started_at=timezone.now(), engine="postgresql"
    )
    dash = compliance_dashboard()
    assert dash["backup"]["stale"] is True
    assert dash["backup"]["last"].status == "failed"

"""The schedule compliance edits, the beat tick that follows it, and the
alerts: a failed target, a failed backup, a stale backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditRecord, SecurityEvent
from apps.backups.models import BackupReplica, BackupRun, BackupTarget, RestoreDrill
from apps.backups.selectors import backup_due, backup_slot_latest
from apps.backups.services import backup_create, backup_staleness_check, backup_tick
from apps.risk.models import Alert

# Tests that dump the database need committed data (pg_dump reads through
# its own connection); the others run in a rolled-back transaction.
COMMITTED = pytest.mark.django_db(transaction=True)


@pytest.mark.django_db
def test_the_scheduled_slot_follows_the_policy(policy):
    policy.every_hours, policy.start_hour_utc = 6, 2
    assert backup_slot_latest(policy, datetime(2026, 11, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 11, 28, 20, tzinfo=UTC
    )
    assert backup_slot_latest(policy, datetime(2026, 11, 29, 9, 30, tzinfo=UTC)) == datetime(
        2026, 11, 29, 8, tzinfo=UTC
    )
    policy.every_hours = 24
    assert backup_slot_latest(policy, datetime(2026, 11, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 11, 28, 2, tzinfo=UTC
    )


@pytest.mark.django_db
def test_a_backup_is_due_once_per_slot_and_a_failed_manual_one_does_not_count(policy):
    now = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
    assert backup_due(policy, now)
    BackupRun.objects.create(
        trigger="manual", status="failed", started_at=now - timedelta(minutes=10), engine="x"
    )
    assert backup_due(policy, now)
    BackupRun.objects.create(
        trigger="scheduled", status="succeeded", started_at=now - timedelta(minutes=5), engine="x"
    )
    assert not backup_due(policy, now)
    policy.enabled = False
    assert not backup_due(policy, now + timedelta(days=1))


@COMMITTED
def test_the_beat_tick_runs_a_due_backup_and_a_due_drill(backup_env, fs_target, policy):
    done = backup_tick()

    run = BackupRun.objects.get()
    assert done["backup"] == str(run.public_id)
    assert run.trigger == BackupRun.Trigger.SCHEDULED
    assert run.status == BackupRun.Status.SUCCEEDED
    assert RestoreDrill.objects.get(public_id=done["drill"]).status == RestoreDrill.Status.PASSED
    assert list(backup_env.BACKUP_SPOOL_DIR.iterdir()) == []  # the spooled artifact is gone
    # Within the same slot the tick does nothing more.
    assert "backup" not in backup_tick()
    assert BackupRun.objects.count() == 1


@pytest.mark.django_db
def test_the_beat_schedule_has_the_backup_jobs():
    assert settings.CELERY_BEAT_SCHEDULE["backups-tick"]["task"] == "apps.backups.tasks.backup_tick"
    assert (
        settings.CELERY_BEAT_SCHEDULE["backups-staleness"]["task"]
        == "apps.backups.tasks.backup_staleness_check"
    )


@COMMITTED
def test_a_failing_target_is_marked_and_alerted_while_the_other_completes(
    backup_env, fs_target, s3_target, policy, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    fs_target.path = str(blocker)
    fs_target.save()

    run = backup_create()

    assert run.status == BackupRun.Status.PARTIAL
    statuses = {r.target.name: r.status for r in run.replicas.select_related("target")}
    assert statuses == {
        "local-disk": BackupReplica.Status.FAILED,
        "object-store": BackupReplica.Status.VERIFIED,
    }
    s3_target.refresh_from_db()
    fs_target.refresh_from_db()
    assert not fs_target.healthy
    assert "NotADirectoryError" in fs_target.last_error or "FileExistsError" in fs_target.last_error
    assert s3_target.healthy
    event = SecurityEvent.objects.get(kind="backup_failed")
    assert event.severity == "critical"
    assert event.data["target"] == "local-disk"
    assert run.alerts[0]["kind"] == "backup_failed"


@COMMITTED
def test_a_self_hosted_bucket_that_does_not_exist_yet_is_created(backup_env, s3_target, policy):
    s3_target.bucket = "fresh-minio-bucket"
    s3_target.save()
    run = backup_create()
    assert run.status == BackupRun.Status.SUCCEEDED


@COMMITTED
def test_a_backup_without_a_recipient_key_fails_and_alerts(backup_env, fs_target, policy):
    backup_env.BACKUP_AGE_RECIPIENTS = []

    run = backup_create()

    assert run.status == BackupRun.Status.FAILED
    assert "no recipient key" in run.error
    assert SecurityEvent.objects.filter(kind="backup_failed", data__run=str(run.public_id)).exists()
    assert AuditRecord.objects.filter(action="backup.failed").exists()


@pytest.mark.django_db
def test_a_backup_older_than_the_policy_allows_raises_one_stale_alert(policy):
    now = timezone.now()
    BackupRun.objects.create(
        trigger="scheduled", status="succeeded", started_at=now - timedelta(hours=27, minutes=5),
        finished_at=now - timedelta(hours=27), engine="postgresql",
    )  # fmt: skip

    assert backup_staleness_check(now=now) == "no backup for 27 hours"
    event = SecurityEvent.objects.get(kind="backup_stale")
    assert event.data["message"] == "no backup for 27 hours"
    alert = Alert.objects.get(kind="backup_stale")
    assert (alert.severity, alert.title) == ("critical", "no backup for 27 hours")
    # An hour later: still stale, not alerted again yet.
    assert backup_staleness_check(now=now + timedelta(hours=1)) == "no backup for 28 hours"
    assert SecurityEvent.objects.filter(kind="backup_stale").count() == 1


@pytest.mark.django_db
def test_a_fresh_backup_is_not_stale(policy):
    now = timezone.now()
    BackupRun.objects.create(
        trigger="scheduled", status="succeeded", started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2), engine="postgresql",
    )  # fmt: skip
    assert backup_staleness_check(now=now) is None
    assert not SecurityEvent.objects.filter(kind="backup_stale").exists()


@pytest.mark.django_db
def test_targets_come_from_the_environment_without_credentials(backup_env, policy, tmp_path):
    backup_env.BACKUP_TARGETS = [
        f"file://{tmp_path}/env-disk",
        "s3://anfu-bucket/daily?endpoint=http://minio:9000&name=minio",
    ]
    from apps.backups.services import backup_targets_sync

    targets = {t.name: t for t in backup_targets_sync()}

    assert targets["env-1-filesystem"].path == f"{tmp_path}/env-disk"
    assert targets["minio"].bucket == "anfu-bucket"
    assert targets["minio"].prefix == "daily/"
    assert targets["minio"].endpoint_url == "http://minio:9000"
    assert targets["minio"].credentials_env == "BACKUP_S3"
    backup_env.BACKUP_TARGETS = ["s3://key:secret@bucket/"]
    with pytest.raises(ValueError, match="credentials"):
        backup_targets_sync()
    assert BackupTarget.objects.filter(from_environment=True).count() == 2


@pytest.mark.django_db
def test_an_unconfigured_development_server_neither_backs_up_nor_alerts(settings, policy):
    settings.DEBUG = True
    settings.BACKUP_AGE_RECIPIENTS, settings.BACKUP_TARGETS = [], []

    assert backup_tick() == {"skipped": "backups are not configured (DEBUG)"}
    assert backup_staleness_check() is None
    assert not BackupRun.objects.exists()
    assert not SecurityEvent.objects.exists()


@pytest.mark.django_db
def test_an_unconfigured_production_server_alerts_that_there_is_no_backup(settings, policy):
    settings.DEBUG = False
    settings.BACKUP_AGE_RECIPIENTS, settings.BACKUP_TARGETS = [], []

    assert backup_staleness_check() == "no backup has ever completed"
    assert SecurityEvent.objects.filter(kind="backup_stale").exists()

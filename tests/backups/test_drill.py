"""The restore drill: the latest backup restored into a scratch database and
checked (row counts, ledger, audit chain), the scratch database dropped."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.audit.models import SecurityEvent
from apps.backups.models import BackupRun, RestoreDrill
from apps.backups.services import backup_create, restore_drill_run
from apps.backups.targets import FilesystemStore
from tests.backups.conftest import seed_business_data

pytestmark = pytest.mark.django_db(transaction=True)


def _scratch_databases(prefix: str) -> list[str]:
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
        return [row[0] for row in cursor.fetchall()]


def test_the_drill_restores_the_latest_backup_and_finds_it_whole(
    backup_env, fs_target, s3_target, policy
):
    seed_business_data()
    run = backup_create()

    drill = restore_drill_run()

    assert drill.status == RestoreDrill.Status.PASSED, drill.problems
    assert drill.run == run
    assert drill.replica.target == fs_target
    assert drill.checks["row_counts"]["mismatched"] == {}
    assert drill.checks["row_counts"]["tables"] == len(run.row_counts)
    assert drill.checks["ledger"] == "balanced"
    assert drill.checks["audit_chain"] == "verified"
    assert _scratch_databases(backup_env.BACKUP_SCRATCH_DB_PREFIX) == []


def test_the_drill_fails_and_alerts_when_the_restored_rows_do_not_match_the_catalog(
    backup_env, fs_target, policy
):
    seed_business_data()
    run = backup_create()
    # The catalog claims rows the artifact does not hold (a silently short dump).
    BackupRun.objects.filter(pk=run.pk).update(
        row_counts={**run.row_counts, "accounts_merchant": 99}
    )

    drill = restore_drill_run()

    assert drill.status == RestoreDrill.Status.FAILED
    assert drill.problems == ["table accounts_merchant: catalog 99, restored 1"]
    event = SecurityEvent.objects.get(kind="backup_failed")
    assert event.data["stage"] == "restore_drill"
    assert event.data["message"].startswith("restore drill failed: table accounts_merchant")
    assert _scratch_databases(backup_env.BACKUP_SCRATCH_DB_PREFIX) == []


def test_the_drill_fails_and_alerts_when_no_copy_restores(backup_env, fs_target, policy):
    seed_business_data()
    run = backup_create()
    replica = run.replicas.get()
    FilesystemStore(fs_target.path)._path(replica.key).write_bytes(
        b"age-encryption.org/v1\nnot really"
    )

    drill = restore_drill_run()

    assert drill.status == RestoreDrill.Status.FAILED
    assert "no copy of this backup verifies" in drill.problems[0]
    assert SecurityEvent.objects.filter(kind="backup_failed", data__stage="restore_drill").exists()


def test_the_drill_fails_when_there_is_no_backup(backup_env, policy):
    drill = restore_drill_run()
    assert drill.status == RestoreDrill.Status.FAILED
    assert drill.problems == ["there is no completed backup to restore"]

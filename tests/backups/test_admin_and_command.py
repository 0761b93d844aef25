"""Compliance in the admin (catalog read-only, back up now, policy edits and
legal holds audited) and `manage.py backup create|list|verify|restore`."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.audit.models import AuditRecord
from apps.backups import databases
from apps.backups.models import BackupPolicy, BackupReplica, BackupRun
from apps.backups.targets import FilesystemStore
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import otp_force_login
from tests.backups.conftest import database_url

# Tests that dump the database need committed data (pg_dump reads through
# its own connection); the others run in a rolled-back transaction.
COMMITTED = pytest.mark.django_db(transaction=True)


@COMMITTED
def test_compliance_backs_up_from_the_admin_and_sees_the_run_in_the_catalog(
    staff_client, backup_env, fs_target, policy
):
    response = staff_client.post(reverse("admin:backups_backuprun_backup_now"))

    assert response.status_code == 302
    run = BackupRun.objects.get()
    assert run.trigger == BackupRun.Trigger.MANUAL
    assert run.requested_by == "compliance@example.test"
    assert run.status == BackupRun.Status.SUCCEEDED
    listing = staff_client.get(reverse("admin:backups_backuprun_changelist"))
    assert listing.status_code == 200
    assert "local-disk: verified" in listing.content.decode()
    detail = staff_client.get(reverse("admin:backups_backuprun_change", args=[run.pk]))
    assert run.sha256 in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()  # the catalog is read-only


@pytest.mark.django_db
def test_the_backup_now_button_needs_a_post_and_a_staff_user(client, backup_env, fs_target, policy):
    otp_force_login(client, UserFactory(is_staff=False))
    response = client.post(reverse("admin:backups_backuprun_backup_now"))
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not BackupRun.objects.exists()


@pytest.mark.django_db
def test_compliance_edits_the_schedule_and_retention_and_the_change_is_audited(
    staff_client, policy
):
    url = reverse("admin:backups_backuppolicy_change", args=[policy.pk])
    form = {
        "enabled": "on", "every_hours": "12", "start_hour_utc": "3", "keep_daily": "14", "keep_weekly": "8",
        "keep_monthly": "24", "max_age_hours": "14", "drill_enabled": "on", "drill_every_hours": "24",
        "extra_recipients": "",
    }  # fmt: skip
    response = staff_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    policy = BackupPolicy.load()
    assert (policy.every_hours, policy.start_hour_utc, policy.keep_daily, policy.max_age_hours) == (
        12,
        3,
        14,
        14,
    )
    record = AuditRecord.objects.get(action="backup.policy_updated")
    assert record.actor_label == "compliance@example.test"
    assert record.data["after"]["keep_daily"] == "14"


@pytest.mark.django_db
def test_a_legal_hold_is_placed_and_released_from_the_admin(staff_client, policy):
    from django.utils import timezone

    run = BackupRun.objects.create(
        trigger="manual", status="succeeded", started_at=timezone.now(), engine="x"
    )
    response = staff_client.post(
        reverse("admin:backups_backuprun_changelist"),
        {"action": "place_legal_hold", "_selected_action": [run.pk]},
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.legal_hold
    assert AuditRecord.objects.filter(action="backup.legal_hold_set").exists()
    response = staff_client.post(
        reverse("admin:backups_backuprun_changelist"),
        {"action": "release_legal_hold", "_selected_action": [run.pk]},
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert not run.legal_hold


@COMMITTED
def test_the_command_creates_lists_verifies_and_restores(
    backup_env, fs_target, s3_target, policy, scratch_db, capsys
):
    call_command("backup", "create")
    run = BackupRun.objects.get()
    assert f"{run.public_id} succeeded" in capsys.readouterr().out

    call_command("backup", "list")
    assert "local-disk:verified, object-store:verified" in capsys.readouterr().out

    call_command("backup", "verify", "latest")
    assert "2 copies verified" in capsys.readouterr().out

    call_command("backup", "restore", "latest", "--into", database_url(scratch_db))
    out = capsys.readouterr()
    assert f"restored from local-disk into {scratch_db['NAME']}" in out.out
    assert "restored" in out.err  # progress
    with databases.temporary_alias(scratch_db) as alias:
        assert databases.row_counts(alias)["accounts_user"] == run.row_counts["accounts_user"]


@COMMITTED
def test_the_command_refuses_the_live_database_unless_forced(backup_env, fs_target, policy):
    call_command("backup", "create")
    with pytest.raises(CommandError, match="live database; pass --force-live"):
        call_command("backup", "restore", "latest", "--into", database_url(databases.live_config()))


@COMMITTED
def test_the_command_reports_a_corrupt_copy_on_verify(backup_env, fs_target, policy):
    call_command("backup", "create")
    replica = BackupReplica.objects.get()
    path = FilesystemStore(fs_target.path)._path(replica.key)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(CommandError, match="not every copy verifies"):
        call_command("backup", "verify", str(replica.run.public_id))
    replica.refresh_from_db()
    assert replica.status == BackupReplica.Status.CORRUPT


@pytest.mark.django_db
def test_the_command_names_an_unknown_backup(backup_env, policy):
    with pytest.raises(CommandError, match="no backup 'latest'"):
        call_command("backup", "restore", "latest", "--into", "sqlite:////tmp/x.sqlite3")

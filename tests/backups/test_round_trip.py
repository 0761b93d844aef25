"""Backups on real PostgreSQL, to a filesystem path and an S3-compatible
endpoint on real HTTP, restored with pg_restore and read by stock tools."""

from __future__ import annotations

import subprocess

import boto3
import pytest
from django.db import connection

from apps.audit.models import SecurityEvent
from apps.backups import databases
from apps.backups.models import BackupReplica, BackupRun
from apps.backups.services import RestoreRefused, backup_create, backup_restore
from apps.backups.targets import FilesystemStore
from apps.transactions.models import JournalEntry, Posting
from apps.transactions.selectors import ledger_integrity_problems
from tests.backups.conftest import seed_business_data, table_contents

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _fs_path(replica: BackupReplica):
    return FilesystemStore(replica.target.path)._path(replica.key)


def _truncate(*tables: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def test_a_backup_to_two_targets_brings_every_table_back_after_the_data_is_dropped(
    backup_env, fs_target, s3_target, policy, scratch_db
):
    seed_business_data()
    before = table_contents("default")
    assert before["transactions_posting"], "the seed must include ledger postings"

    run = backup_create(trigger=BackupRun.Trigger.MANUAL)

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert {r.target.name: r.status for r in run.replicas.all()} == {
        "local-disk": "verified",
        "object-store": "verified",
    }
    assert len(run.sha256) == 64
    assert run.row_counts["transactions_posting"] == len(before["transactions_posting"])
    # The artifact reveals nothing: no table name, no merchant name in it.
    artifact = _fs_path(run.replicas.get(target=fs_target)).read_bytes()
    assert artifact.startswith(b"age-encryption.org/v1")
    assert b"accounts_merchant" not in artifact
    assert "青柠咖啡".encode() not in artifact

    _truncate(
        "accounts_merchant",
        "transactions_posting",
        "transactions_journalentry",
        "transactions_ledgeraccount",
    )
    assert not Posting.objects.exists()

    backup_restore(run=run, into=scratch_db)
    with databases.temporary_alias(scratch_db) as alias:
        restored = table_contents(alias)
        assert ledger_integrity_problems(using=alias) == []
    assert set(restored) == set(before)
    for table, rows in before.items():
        if table.startswith("backups_"):
            continue  # the catalog moved on after the dump; checked below
        assert restored[table] == rows, f"table {table} differs after restore"
    # The catalog in the dump holds this run as it was at the snapshot.
    assert len(restored["backups_backuprun"]) == 1
    assert "'running'" in restored["backups_backuprun"][0]

    # Restoring over the live database needs an explicit flag, then works.
    live = databases.live_config()
    with pytest.raises(RestoreRefused, match="live database"):
        backup_restore(run=run, into=live)
    backup_restore(run=run, into=live, force_live=True)
    after = table_contents("default")
    for table in (
        "accounts_merchant",
        "transactions_posting",
        "transactions_journalentry",
        "transactions_ledgeraccount",
    ):
        assert after[table] == before[table]
    assert JournalEntry.objects.count() == 4
    assert ledger_integrity_problems() == []


def test_the_stock_age_tool_decrypts_an_artifact_and_pg_restore_lists_it(
    backup_env, fs_target, s3_target, policy, tmp_path, age_identity
):
    seed_business_data()
    run = backup_create()
    identity_file = tmp_path / "backup.key"
    identity_file.write_text(f"# offline identity\n{age_identity}\n")
    # The S3 copy, fetched as an operator would, without the application.
    replica = run.replicas.get(target=s3_target)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_target.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    artifact = tmp_path / run.artifact_name
    s3.download_file(s3_target.bucket, replica.key, str(artifact))
    sidecar = (
        s3.get_object(Bucket=s3_target.bucket, Key=replica.key + ".sha256")["Body"].read().decode()
    )
    assert sidecar.split()[0] == run.sha256
    check = subprocess.run(
        ["sha256sum", "-c", "-"], input=sidecar, cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr

    dump = tmp_path / "anfu.dump"
    pipeline = f"age --decrypt -i {identity_file} {artifact} | zstd -d -q -o {dump}"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "TABLE DATA public transactions_posting" in listing.stdout
    assert "TABLE DATA public accounts_merchant" in listing.stdout


def test_a_flipped_byte_in_one_copy_is_detected_and_the_other_copy_is_used(
    backup_env, fs_target, s3_target, policy, scratch_db
):
    seed_business_data()
    run = backup_create()
    path = _fs_path(run.replicas.get(target=fs_target))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    result = backup_restore(run=run, into=scratch_db)

    assert result.replica.target == s3_target
    local = run.replicas.get(target=fs_target)
    assert local.status == BackupReplica.Status.CORRUPT
    assert "checksum mismatch" in local.error
    fs_target.refresh_from_db()
    assert not fs_target.healthy
    event = SecurityEvent.objects.filter(kind="backup_failed").latest("created_at")
    assert "local-disk" in event.data["message"]
    with databases.temporary_alias(scratch_db) as alias:
        assert (
            databases.row_counts(alias)["transactions_posting"]
            == run.row_counts["transactions_posting"]
        )


def test_a_wrong_key_is_refused_before_anything_is_written(
    backup_env, fs_target, s3_target, policy, scratch_db
):
    from pyrage import x25519

    seed_business_data()
    run = backup_create()

    with pytest.raises(RestoreRefused, match="wrong key") as refused:
        backup_restore(run=run, into=scratch_db, identities=[x25519.Identity.generate()])

    assert run.key_fingerprints[0] in str(refused.value)
    with databases.temporary_alias(scratch_db) as alias:
        assert databases.row_counts(alias) == {}
    # An intact copy that the key cannot open is not "corrupt".
    assert set(run.replicas.values_list("status", flat=True)) == {BackupReplica.Status.VERIFIED}


def test_a_truncated_artifact_is_refused_before_anything_is_written(
    backup_env, fs_target, s3_target, policy, scratch_db
):
    seed_business_data()
    run = backup_create()
    path = _fs_path(run.replicas.get(target=fs_target))
    path.write_bytes(path.read_bytes()[: run.size_bytes // 2])
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_target.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key = run.replicas.get(target=s3_target).key
    whole = s3.get_object(Bucket=s3_target.bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=s3_target.bucket, Key=key, Body=whole[:-1])

    with pytest.raises(RestoreRefused, match="no copy of this backup verifies"):
        backup_restore(run=run, into=scratch_db)

    with databases.temporary_alias(scratch_db) as alias:
        assert databases.row_counts(alias) == {}
    assert set(run.replicas.values_list("status", flat=True)) == {BackupReplica.Status.CORRUPT}

"""Backup keys: age recipients (public) in configuration, identities
(secret) only where restores happen; adding a recipient strands nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from pyrage import x25519

from apps.backups import databases
from apps.backups.crypto import configured_identities, recipient_fingerprint
from apps.backups.models import BackupRun
from apps.backups.services import (
    RestoreRefused,
    backup_create,
    backup_policy_update,
    backup_restore,
)

# Tests that dump the database need committed data (pg_dump reads through
# its own connection); the others run in a rolled-back transaction.
COMMITTED = pytest.mark.django_db(transaction=True)


@COMMITTED
def test_adding_a_recipient_key_leaves_old_backups_readable(
    backup_env, fs_target, policy, scratch_db, age_identity
):
    old_run = backup_create()
    # Yesterday's backup (retention keeps one a day, the newest).
    BackupRun.objects.filter(pk=old_run.pk).update(
        started_at=old_run.started_at - timedelta(days=1)
    )
    new_identity = x25519.Identity.generate()
    backup_policy_update(
        policy=policy,
        changes={"extra_recipients": str(new_identity.to_public())},
        actor="compliance@example.test",
    )
    new_run = backup_create()

    assert old_run.key_fingerprints == [recipient_fingerprint(str(age_identity.to_public()))]
    assert new_run.key_fingerprints == [
        recipient_fingerprint(str(age_identity.to_public())),
        recipient_fingerprint(str(new_identity.to_public())),
    ]
    # The old key still opens the old backup, the new key the new one,
    # and the new key cannot open what was made before it existed.
    backup_restore(run=old_run, into=scratch_db, identities=[age_identity])
    backup_restore(run=new_run, into=scratch_db, identities=[new_identity])
    with pytest.raises(RestoreRefused, match="wrong key"):
        backup_restore(run=old_run, into=scratch_db, identities=[new_identity])


@pytest.mark.django_db
def test_a_pasted_secret_key_is_refused_as_a_recipient(policy, age_identity):
    policy.extra_recipients = str(age_identity)
    with pytest.raises(ValidationError, match="identity"):
        policy.full_clean()
    policy.extra_recipients = "age1notakey"
    with pytest.raises(ValidationError, match="Not an age public key"):
        policy.full_clean()


@COMMITTED
def test_a_restore_host_without_an_identity_is_refused(backup_env, fs_target, policy):
    run = backup_create()
    backup_env.BACKUP_AGE_IDENTITY = ""
    elsewhere = {**databases.live_config(), "NAME": "anfu_restore_never_created"}
    with pytest.raises(RestoreRefused, match="No backup identity"):
        backup_restore(run=run, into=elsewhere)
    assert run.status == BackupRun.Status.SUCCEEDED


@pytest.mark.django_db
def test_identities_are_read_from_a_file_written_by_age_keygen(backup_env, tmp_path, age_identity):
    key_file = tmp_path / "key.txt"
    key_file.write_text(
        f"# created: 2026-11-29\n# public key: {age_identity.to_public()}\n{age_identity}\n"
    )
    backup_env.BACKUP_AGE_IDENTITY = ""
    backup_env.BACKUP_AGE_IDENTITY_FILE = str(key_file)
    assert [str(i) for i in configured_identities()] == [str(age_identity)]


@pytest.mark.django_db
def test_backup_keys_are_not_the_field_encryption_keys(settings, backup_env):
    assert settings.FIELD_ENCRYPTION_KEY not in settings.BACKUP_AGE_RECIPIENTS
    assert settings.BACKUP_AGE_IDENTITY != settings.FIELD_ENCRYPTION_KEY

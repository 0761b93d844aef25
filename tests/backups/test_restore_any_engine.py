"""Backup and restore on whichever database the suite runs on (SQLite's
online backup API or pg_dump), to both kinds of target."""

from __future__ import annotations

import pytest

from apps.backups import databases
from apps.backups.services import backup_create, backup_restore
from tests.backups.conftest import seed_business_data, table_contents

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_restore_into_a_scratch_database_reproduces_every_table(
    backup_env, fs_target, s3_target, policy, scratch_db
):
    seed_business_data()
    before = table_contents("default")

    run = backup_create()
    assert run.engine == databases.engine_of(databases.live_config())
    result = backup_restore(run=run, into=scratch_db)

    assert result.replica.target == fs_target
    with databases.temporary_alias(scratch_db) as alias:
        restored = table_contents(alias)
    assert {t for t in restored if not t.startswith("backups_")} == {
        t for t in before if not t.startswith("backups_")
    }
    for table, rows in before.items():
        if not table.startswith("backups_"):
            assert restored[table] == rows, table

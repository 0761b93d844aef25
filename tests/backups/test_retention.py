"""Retention: N daily, N weekly, N monthly per target, legal holds never
pruned; exactly the copies the policy drops are deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.backups.models import BackupReplica, BackupRun, BackupTarget
from apps.backups.retention import retention_keep
from apps.backups.services import backup_legal_hold_set, backup_retention_apply
from apps.backups.targets import FilesystemStore


def at(month: int, day: int, hour: int = 2) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_retention_keeps_the_newest_copy_of_each_recent_day_week_and_month():
    copies = [(f"{m}-{d}-{h}", at(m, d, h)) for m, d, h in [
        (11, 29, 14), (11, 29, 2), (11, 28, 2), (11, 27, 2), (11, 26, 2), (11, 22, 2),
        (11, 21, 2), (11, 15, 2), (10, 31, 2), (10, 15, 2), (9, 1, 2),
    ]]  # fmt: skip
    keep = retention_keep(copies, daily=3, weekly=2, monthly=2)
    # daily: 29 (the 14:00 one), 28, 27; weekly: ISO week 48 → 29, week 47 → 22;
    # monthly: November → 29, October → 31.
    assert keep == {"11-29-14", "11-28-2", "11-27-2", "11-22-2", "10-31-2"}


def test_retention_with_fewer_copies_than_quota_keeps_them_all():
    copies = [("a", at(11, 1)), ("b", at(11, 2))]
    assert retention_keep(copies, daily=7, weekly=0, monthly=0) == {"a", "b"}


def _copy(
    target: BackupTarget, when: datetime, *, legal_hold: bool = False, status="verified"
) -> BackupReplica:
    run = BackupRun.objects.create(
        trigger="scheduled", status="succeeded", started_at=when, finished_at=when, engine="postgresql",
        artifact_name=f"anfu-{when:%Y%m%dT%H%M}.dump.zst.age", sha256="0" * 64, legal_hold=legal_hold,
    )  # fmt: skip
    replica = BackupReplica.objects.create(
        run=run, target=target, key=run.artifact_name, status=status
    )
    store = FilesystemStore(target.path)
    store.put_bytes(b"ciphertext", replica.key)
    store.put_bytes(b"checksum", replica.key + ".sha256")
    return replica


@pytest.mark.django_db
def test_applying_retention_prunes_exactly_what_the_policy_says_and_never_a_legal_hold(
    policy, fs_target, tmp_path
):
    policy.keep_daily, policy.keep_weekly, policy.keep_monthly = 3, 2, 2
    policy.save()
    other = BackupTarget.objects.create(
        name="second-disk", kind="filesystem", path=str(tmp_path / "second")
    )
    dates = {
        "29-14": at(11, 29, 14), "29-02": at(11, 29, 2), "28": at(11, 28), "27": at(11, 27), "26": at(11, 26),
        "22": at(11, 22), "21": at(11, 21), "15": at(11, 15), "oct31": at(10, 31), "oct15": at(10, 15),
        "sep1": at(9, 1),
    }  # fmt: skip
    copies = {name: _copy(fs_target, when) for name, when in dates.items()}
    held = _copy(fs_target, at(9, 30))
    backup_legal_hold_set(
        run=held.run, hold=True, reason="court order 2026-117", actor="compliance"
    )
    failed = _copy(fs_target, at(8, 1), status="failed")
    # The second target holds only old copies: its own quota keeps them.
    old_elsewhere = [_copy(other, at(8, 3)), _copy(other, at(8, 2))]

    pruned = backup_retention_apply()

    assert {r.pk for r in pruned} == {
        copies[n].pk for n in ("29-02", "26", "21", "15", "oct15", "sep1")
    }
    store = FilesystemStore(fs_target.path)
    for name, replica in copies.items():
        replica.refresh_from_db()
        gone = replica in pruned
        assert (replica.status == "pruned") is gone, name
        assert store._path(replica.key).exists() is not gone, name
        assert store._path(replica.key + ".sha256").exists() is not gone, name
    held.refresh_from_db()
    failed.refresh_from_db()
    assert held.status == "verified"
    assert store._path(held.key).exists()
    assert failed.status == "failed"
    for replica in old_elsewhere:
        replica.refresh_from_db()
        assert replica.status == "verified"

    # Applying it again prunes nothing more.
    assert backup_retention_apply() == []

"""`manage.py backup create | list | verify [ref] | restore <ref> --into <url> [--force-live]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.backups import databases
from apps.backups.models import BackupReplica, BackupRun
from apps.backups.selectors import backup_run_resolve


def _mb(n: int | None) -> str:
    return f"{(n or 0) / 1_048_576:,.1f} MB"


class Command(BaseCommand):
    help = "Encrypted backups: create one, list the catalog, verify copies, restore."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("create", help="back up now to every enabled target")
        listing = sub.add_parser("list", help="the catalog, newest first")
        listing.add_argument("--limit", type=int, default=20)
        verify = sub.add_parser(
            "verify", help="read every copy of a backup back and check its checksum"
        )
        verify.add_argument(
            "ref", nargs="?", default="latest", help="latest, a public id or a catalog number"
        )
        restore = sub.add_parser("restore", help="restore a backup into a database")
        restore.add_argument("ref", help="latest, a public id or a catalog number")
        restore.add_argument(
            "--into", required=True, help="database URL, e.g. postgres://user@host/db (must exist)"
        )
        restore.add_argument(
            "--force-live", action="store_true", help="allow overwriting the live database"
        )

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _run(self, ref: str) -> BackupRun:
        run = backup_run_resolve(ref)
        if run is None:
            raise CommandError(
                f"no backup {ref!r} in the catalog"
                + (" (none completed)" if ref == "latest" else "")
            )
        return run

    def _create(self, **options) -> None:
        from apps.backups.services import BackupBusy, backup_create

        try:
            run = backup_create(trigger=BackupRun.Trigger.COMMAND, actor="manage.py backup")
        except BackupBusy as exc:
            raise CommandError(str(exc)) from exc
        for replica in run.replicas.select_related("target"):
            self.stdout.write(f"  {replica.target.name}: {replica.status} {replica.error}".rstrip())
        line = f"{run.public_id} {run.status} {_mb(run.size_bytes)} sha256={run.sha256} in {(run.duration_ms or 0) / 1000:.1f}s"
        if run.status == BackupRun.Status.FAILED:
            raise CommandError(f"backup failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(line))

    def _list(self, *, limit: int, **options) -> None:
        for run in BackupRun.objects.prefetch_related("replicas__target")[:limit]:
            copies = ", ".join(f"{r.target.name}:{r.status}" for r in run.replicas.all())
            hold = " HOLD" if run.legal_hold else ""
            self.stdout.write(
                f"{run.pk:>5} {run.public_id} {run.started_at:%Y-%m-%d %H:%M}Z {run.status:<9} "
                f"{_mb(run.size_bytes):>10}{hold}  [{copies}]"
            )

    def _verify(self, *, ref: str, **options) -> None:
        from apps.backups.services import backup_replicas_verify

        run = self._run(ref)
        replicas = backup_replicas_verify(run=run)
        for replica in replicas:
            self.stdout.write(f"  {replica.target.name}: {replica.status} {replica.error}".rstrip())
        if not replicas or any(r.status != BackupReplica.Status.VERIFIED for r in replicas):
            raise CommandError(f"backup {run.public_id}: not every copy verifies")
        self.stdout.write(self.style.SUCCESS(f"{run.public_id}: {len(replicas)} copies verified"))

    def _restore(self, *, ref: str, into: str, force_live: bool, **options) -> None:
        from apps.backups.services import RestoreRefused, backup_restore

        run = self._run(ref)
        try:
            cfg = databases.config_from_url(into)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        def progress(done: int, total: int | None) -> None:
            share = f" ({100 * done / total:.0f}%)" if total else ""
            self.stderr.write(f"  restored {_mb(done)} of {_mb(total)}{share}")

        self.stdout.write(
            f"restoring {run.public_id} ({run.started_at:%Y-%m-%d %H:%M}Z) into {cfg['NAME']}"
        )
        try:
            result = backup_restore(
                run=run,
                into=cfg,
                force_live=force_live,
                actor="manage.py backup",
                progress=progress,
            )
        except RestoreRefused as exc:
            raise CommandError(f"restore refused: {exc}") from exc
        for note in result.skipped:
            self.stderr.write(f"  skipped {note}")
        self.stdout.write(
            self.style.SUCCESS(
                f"restored from {result.replica.target.name} into {result.database} in {result.duration_ms / 1000:.1f}s"
            )
        )

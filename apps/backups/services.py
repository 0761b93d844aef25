"""Backup actions. A backup or a restore runs for minutes, so unlike other
services these never hold one transaction around the whole action (that
would pin a snapshot and locks for the whole dump); each state change of the
catalog is its own short transaction with its audit record."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.models import SecurityEvent
from apps.audit.services import audit_chain_verify, audit_record, security_event_record
from apps.backups import databases
from apps.backups.crypto import (
    BackupKeyError,
    configured_identities,
    configured_recipients,
    recipient_fingerprint,
)
from apps.backups.models import BackupPolicy, BackupReplica, BackupRun, BackupTarget, RestoreDrill
from apps.backups.pipeline import (
    ArtifactRefused,
    ReplicaCorrupt,
    WrongKey,
    artifact_check,
    decrypt_into,
    encrypt_to_file,
)
from apps.backups.retention import retention_keep
from apps.backups.targets import object_key, store_for, stream_sha256, target_from_url

logger = logging.getLogger("anfu.backups")


class BackupBusy(Exception):
    pass


class RestoreRefused(Exception):
    pass


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _alert(
    *, kind: str, message: str, run: BackupRun | None = None, data: dict | None = None
) -> None:
    """The one place backup alerts go: a compliance alert (stored, deduplicated
    per kind and target, emailed), a critical security event, and a note on
    the run."""
    from apps.risk.services import alert_raise

    payload = {"message": message, **(data or {})}
    if run is not None:
        payload["run"] = str(run.public_id)
        run.alerts = [
            *run.alerts,
            {"at": timezone.now().isoformat(), "kind": kind, "message": message},
        ]
        run.save(update_fields=["alerts"])
    security_event_record(kind=kind, severity=SecurityEvent.Severity.CRITICAL, data=payload)
    alert_raise(
        kind=kind,
        severity="critical",
        title=message,
        detail=payload,
        dedup_key=f"{kind}:{(data or {}).get('target', '')}",
    )
    logger.error("backup alert", extra={"kind": kind, "alert": message})


def _unconfigured_development() -> bool:
    # `make run` has no keys and no targets: a demo should not page anyone.
    # In production the same state is alerted on (failed and stale backups).
    return settings.DEBUG and not (
        settings.BACKUP_AGE_RECIPIENTS or settings.BACKUP_TARGETS or BackupTarget.objects.exists()
    )


def backup_targets_sync() -> list[BackupTarget]:
    """Creates or updates the targets named in BACKUP_TARGETS; returns every
    enabled target (environment and admin ones)."""
    for index, url in enumerate(settings.BACKUP_TARGETS):
        fields = target_from_url(url, index)
        name = fields.pop("name")
        with transaction.atomic():
            target, created = BackupTarget.objects.update_or_create(
                name=name, defaults={**fields, "from_environment": True}
            )
            if created:
                audit_record(
                    action="backup.target_added",
                    target=target,
                    data={"name": name, "kind": target.kind},
                )
    return list(BackupTarget.objects.filter(enabled=True))


def backup_policy_update(
    *, policy: BackupPolicy, changes: dict[str, Any], actor: Any
) -> BackupPolicy:
    with transaction.atomic():
        before = {name: getattr(policy, name) for name in changes}
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.full_clean()
        policy.save()
        audit_record(
            action="backup.policy_updated",
            actor=actor,
            target=policy,
            data={
                "before": {k: str(v) for k, v in before.items()},
                "after": {k: str(v) for k, v in changes.items()},
            },
        )
    return policy


def backup_legal_hold_set(*, run: BackupRun, hold: bool, reason: str, actor: Any) -> BackupRun:
    with transaction.atomic():
        run = BackupRun.objects.select_for_update().get(pk=run.pk)
        run.legal_hold, run.legal_hold_reason = hold, reason[:300] if hold else ""
        run.save(update_fields=["legal_hold", "legal_hold_reason"])
        audit_record(
            action="backup.legal_hold_set" if hold else "backup.legal_hold_released",
            actor=actor,
            target=run,
            data={"reason": reason[:300]},
        )
    return run


def _run_start(*, trigger: str, actor: Any, engine: str) -> BackupRun:
    with transaction.atomic():
        # The policy row serialises starts: two beats or an impatient admin
        # cannot start two dumps at once.
        BackupPolicy.objects.select_for_update().filter(pk=BackupPolicy.load().pk).first()
        horizon = timezone.now() - timedelta(hours=settings.BACKUP_RUN_TIMEOUT_HOURS)
        if BackupRun.objects.filter(
            status=BackupRun.Status.RUNNING, started_at__gte=horizon
        ).exists():
            raise BackupBusy("a backup is already running")
        run = BackupRun.objects.create(
            trigger=trigger,
            requested_by=str(getattr(actor, "email", None) or actor or "system")[:200],
            started_at=timezone.now(),
            engine=engine,
        )
    return run


def _run_fail(run: BackupRun, message: str, started: float) -> BackupRun:
    run.status, run.error = BackupRun.Status.FAILED, message[:5000]
    run.finished_at, run.duration_ms = timezone.now(), _ms(started)
    run.save(update_fields=["status", "error", "finished_at", "duration_ms"])
    with transaction.atomic():
        audit_record(action="backup.failed", target=run, data={"error": message[:500]})
    _alert(kind="backup_failed", message=f"backup failed: {message[:300]}", run=run)
    return run


def backup_create(*, trigger: str = BackupRun.Trigger.MANUAL, actor: Any = None) -> BackupRun:
    """Dumps, compresses, encrypts and checksums the live database once, then
    writes the artifact to every enabled target and reads each copy back.
    A failing target is marked and alerted; the others still complete."""
    started = time.monotonic()
    engine = databases.engine_of(databases.live_config())
    targets = backup_targets_sync()
    policy = BackupPolicy.load()
    run = _run_start(trigger=trigger, actor=actor, engine=engine)
    try:
        recipients = configured_recipients(policy.extra_recipients)
    except ValueError as exc:
        return _run_fail(run, f"bad recipient key: {exc}", started)
    if not recipients:
        return _run_fail(
            run, "no recipient key: set BACKUP_AGE_RECIPIENTS or add one in the policy", started
        )
    if not targets:
        return _run_fail(
            run, "no enabled backup target: set BACKUP_TARGETS or add one in the admin", started
        )

    run.artifact_name = (
        f"anfu-{engine}-{run.started_at:%Y%m%dT%H%M%SZ}-{run.public_id.hex[:8]}.dump.zst.age"
    )
    run.key_fingerprints = [recipient_fingerprint(r) for r in recipients]
    settings.BACKUP_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    spool = settings.BACKUP_SPOOL_DIR / run.artifact_name
    try:
        try:
            dump = databases.dump_open()
            try:
                run.sha256, run.size_bytes, run.raw_bytes = encrypt_to_file(
                    dump.stream, spool, recipients, level=settings.BACKUP_ZSTD_LEVEL
                )
            except BaseException:
                # The pipeline's own error is the one to report, not the
                # dumper's broken pipe that follows from it.
                with contextlib.suppress(Exception):
                    dump.close()
                raise
            dump.close()
        except Exception as exc:
            logger.exception("backup dump failed")
            return _run_fail(run, f"dump failed: {exc}", started)
        run.row_counts, run.dump_ms = dump.row_counts, _ms(started)
        run.save(
            update_fields=[
                "artifact_name",
                "key_fingerprints",
                "sha256",
                "size_bytes",
                "raw_bytes",
                "row_counts",
                "dump_ms",
            ]
        )
        replicas = [_replica_write(run, target, spool) for target in targets]
    finally:
        spool.unlink(missing_ok=True)

    verified = sum(1 for r in replicas if r.status == BackupReplica.Status.VERIFIED)
    run.status = (
        BackupRun.Status.SUCCEEDED
        if verified == len(replicas)
        else BackupRun.Status.PARTIAL
        if verified
        else BackupRun.Status.FAILED
    )
    if not verified:
        run.error = "no target holds a verified copy"
    run.finished_at, run.duration_ms = timezone.now(), _ms(started)
    with transaction.atomic():
        run.save(update_fields=["status", "error", "finished_at", "duration_ms"])
        audit_record(
            action="backup.completed",
            actor=actor,
            target=run,
            data={
                "status": run.status,
                "sha256": run.sha256,
                "size": run.size_bytes,
                "verified_targets": verified,
            },
        )
    if not verified:
        _alert(
            kind="backup_failed", message="backup failed: no target holds a verified copy", run=run
        )
    if verified:
        try:
            backup_retention_apply()
        except Exception as exc:
            logger.exception("retention failed")
            _alert(kind="backup_failed", message=f"retention failed: {exc}", run=run)
    return run


def _replica_write(run: BackupRun, target: BackupTarget, spool) -> BackupReplica:
    replica = BackupReplica.objects.create(
        run=run, target=target, key=object_key(target, run.artifact_name)
    )
    started = time.monotonic()
    try:
        store = store_for(target)
        store.put_file(spool, replica.key)
        # sha256sum's format, so an operator can check a copy with stock tools.
        store.put_bytes(f"{run.sha256}  {run.artifact_name}\n".encode(), replica.key + ".sha256")
        replica.upload_ms = _ms(started)
        started = time.monotonic()
        replica.sha256_read, replica.size_bytes = stream_sha256(store.open(replica.key))
        replica.verify_ms = _ms(started)
    except Exception as exc:
        logger.exception("backup target failed", extra={"target": target.name})
        replica.status, replica.error = (
            BackupReplica.Status.FAILED,
            f"{type(exc).__name__}: {exc}"[:2000],
        )
    else:
        if replica.sha256_read == run.sha256:
            replica.status, replica.verified_at = BackupReplica.Status.VERIFIED, timezone.now()
        else:
            replica.status, replica.error = (
                BackupReplica.Status.CORRUPT,
                "read-back checksum differs",
            )
    replica.save()
    _target_mark(target, replica)
    if replica.status != BackupReplica.Status.VERIFIED:
        _alert(
            kind="backup_failed",
            message=f"target {target.name}: {replica.error}",
            run=run,
            data={"target": target.name},
        )
    return replica


def _target_mark(target: BackupTarget, replica: BackupReplica) -> None:
    target.healthy = replica.status == BackupReplica.Status.VERIFIED
    target.last_error = "" if target.healthy else replica.error
    target.last_checked_at = timezone.now()
    target.save(update_fields=["healthy", "last_error", "last_checked_at"])


def backup_replicas_verify(*, run: BackupRun) -> list[BackupReplica]:
    """Reads every live copy of `run` back and checks its checksum."""
    checked = []
    for replica in run.replicas.exclude(status=BackupReplica.Status.PRUNED).select_related(
        "target"
    ):
        started = time.monotonic()
        try:
            replica.sha256_read, replica.size_bytes = stream_sha256(
                store_for(replica.target).open(replica.key)
            )
        except Exception as exc:
            replica.status, replica.error = (
                BackupReplica.Status.FAILED,
                f"{type(exc).__name__}: {exc}"[:2000],
            )
        else:
            ok = replica.sha256_read == run.sha256
            replica.status = BackupReplica.Status.VERIFIED if ok else BackupReplica.Status.CORRUPT
            replica.error = "" if ok else "read-back checksum differs"
            if ok:
                replica.verified_at = timezone.now()
        replica.verify_ms = _ms(started)
        replica.save()
        _target_mark(replica.target, replica)
        if replica.status != BackupReplica.Status.VERIFIED:
            _alert(
                kind="backup_failed",
                message=f"target {replica.target.name}: {replica.error}",
                run=run,
            )
        checked.append(replica)
    return checked


@dataclass
class RestoreResult:
    run: BackupRun
    replica: BackupReplica
    database: str
    plain_bytes: int
    duration_ms: int
    skipped: list[str] = field(default_factory=list)


def backup_restore(
    *,
    run: BackupRun,
    into: dict,
    force_live: bool = False,
    identities: list | None = None,
    actor: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> RestoreResult:
    """Restores `run` into the database `into` (a Django database dict).
    The first copy that passes a full check (checksum, key, every age chunk,
    a complete zstd frame) is used; nothing is written before one has."""
    if databases.same_database(into, databases.live_config()) and not force_live:
        raise RestoreRefused(
            f"{into['NAME']} is the live database; pass --force-live to overwrite it"
        )
    if run.status not in (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL):
        raise RestoreRefused(f"backup {run.public_id} did not complete ({run.status})")
    if identities is None:
        try:
            identities = configured_identities()
        except BackupKeyError as exc:
            raise RestoreRefused(str(exc)) from exc
    started = time.monotonic()
    skipped: list[str] = []
    chosen, plain_bytes = None, 0
    for replica in run.replicas.exclude(status=BackupReplica.Status.PRUNED).select_related(
        "target"
    ):
        try:
            plain_bytes = artifact_check(
                store_for(replica.target).open(replica.key), identities, run.sha256
            )
        except WrongKey as exc:
            raise RestoreRefused(
                f"{exc}; the backup was encrypted to {', '.join(run.key_fingerprints)}"
            ) from exc
        except ReplicaCorrupt as exc:
            replica.status, replica.error = BackupReplica.Status.CORRUPT, str(exc)[:2000]
            replica.save(update_fields=["status", "error"])
            _target_mark(replica.target, replica)
            _alert(kind="backup_failed", message=f"target {replica.target.name}: {exc}", run=run)
            skipped.append(f"{replica.target.name}: {exc}")
            continue
        except ArtifactRefused as exc:
            raise RestoreRefused(str(exc)) from exc
        except Exception as exc:
            skipped.append(f"{replica.target.name}: {type(exc).__name__}: {exc}")
            continue
        chosen = replica
        break
    if chosen is None:
        raise RestoreRefused(
            "no copy of this backup verifies: " + "; ".join(skipped or ["it has no copies left"])
        )
    try:
        with databases.restore_sink(into) as sink:
            decrypt_into(
                store_for(chosen.target).open(chosen.key),
                sink,
                identities,
                total=run.size_bytes,
                progress=progress,
            )
    except (databases.RestoreFailed, ArtifactRefused) as exc:
        raise RestoreRefused(str(exc)) from exc
    result = RestoreResult(run, chosen, str(into["NAME"]), plain_bytes, _ms(started), skipped)
    with transaction.atomic():
        audit_record(
            action="backup.restored",
            actor=actor,
            target=run,
            data={
                "target": chosen.target.name,
                "database": str(into["NAME"]),
                "force_live": force_live,
            },
        )
    return result


def backup_retention_apply(*, now: datetime | None = None) -> list[BackupReplica]:
    """Prunes, per target, the verified copies the policy no longer keeps.
    Copies of runs under legal hold are never pruned and use no quota."""
    policy = BackupPolicy.load()
    pruned = []
    for target in BackupTarget.objects.all():
        candidates = list(
            BackupReplica.objects.filter(
                target=target, status=BackupReplica.Status.VERIFIED, run__legal_hold=False
            )
            .select_related("run")
            .order_by("-run__started_at")
        )
        keep = retention_keep(
            [(r.pk, r.run.started_at) for r in candidates],
            daily=policy.keep_daily,
            weekly=policy.keep_weekly,
            monthly=policy.keep_monthly,
        )
        doomed = [r for r in candidates if r.pk not in keep]
        if not doomed:
            continue
        store = store_for(target)
        for replica in doomed:
            store.delete(replica.key)
            store.delete(replica.key + ".sha256")
            with transaction.atomic():
                replica.status, replica.pruned_at = (
                    BackupReplica.Status.PRUNED,
                    now or timezone.now(),
                )
                replica.save(update_fields=["status", "pruned_at"])
                audit_record(
                    action="backup.pruned", target=replica.run, data={"target": target.name}
                )
            pruned.append(replica)
    return pruned


def backup_runs_reap_interrupted() -> int:
    """A worker that died mid-backup leaves a run 'running' forever; after
    the timeout it is failed and alerted so the next one can start."""
    horizon = timezone.now() - timedelta(hours=settings.BACKUP_RUN_TIMEOUT_HOURS)
    stuck = list(BackupRun.objects.filter(status=BackupRun.Status.RUNNING, started_at__lt=horizon))
    for run in stuck:
        _run_fail(run, "interrupted: the backup never finished", time.monotonic())
    return len(stuck)


def backup_staleness_check(*, now: datetime | None = None) -> str | None:
    """Alerts when the newest completed backup is older than the policy
    allows ("no backup for 26 hours"); repeats at most every six hours."""
    now = now or timezone.now()
    policy = BackupPolicy.load()
    if not policy.enabled or _unconfigured_development():
        return None
    last = (
        BackupRun.objects.filter(status__in=[BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL])
        .order_by("-finished_at")
        .first()
    )
    if (
        last is not None
        and last.finished_at
        and now - last.finished_at <= timedelta(hours=policy.max_age_hours)
    ):
        if policy.stale_alerted_at:
            policy.stale_alerted_at = None
            policy.save(update_fields=["stale_alerted_at"])
        return None
    message = (
        f"no backup for {int((now - last.finished_at).total_seconds() // 3600)} hours"
        if last is not None and last.finished_at
        else "no backup has ever completed"
    )
    if policy.stale_alerted_at is None or now - policy.stale_alerted_at >= timedelta(hours=6):
        _alert(kind="backup_stale", message=message, data={"max_age_hours": policy.max_age_hours})
        policy.stale_alerted_at = now
        policy.save(update_fields=["stale_alerted_at"])
    return message


def _ledger_check(alias: str) -> tuple[list[str], str | None]:
    try:
        from apps.transactions.selectors import ledger_integrity_problems
    except ImportError:
        model_names = {m.__name__ for m in django_apps.get_app_config("transactions").get_models()}
        if model_names & {"LedgerAccount", "Posting"}:
            return [
                "the ledger exists but its integrity check (ledger_integrity_problems) is missing"
            ], None
        return [], "ledger not installed"
    return [str(p) for p in ledger_integrity_problems(using=alias)], None


def restore_drill_run(*, actor: Any = None, identities: list | None = None) -> RestoreDrill:
    """Restores the latest backup into a scratch database and checks it: row
    counts against the catalog, the ledger summing to zero, the audit chain.
    The scratch database is always dropped; a failure is alerted."""
    from apps.backups.selectors import backup_latest_restorable

    started = time.monotonic()
    run = backup_latest_restorable()
    drill = RestoreDrill.objects.create(run=run, started_at=timezone.now())
    problems: list[str] = []
    notes: list[str] = []
    checks: dict[str, Any] = {}
    if run is None:
        problems.append("there is no completed backup to restore")
    else:
        scratch: dict | None = None
        try:
            scratch = databases.scratch_database_create()
            drill.scratch_database = str(scratch["NAME"])
            result = backup_restore(run=run, into=scratch, identities=identities, actor=actor)
            drill.replica = result.replica
            notes.extend(f"skipped {s}" for s in result.skipped)
            with databases.temporary_alias(scratch) as alias:
                restored = databases.row_counts(alias)
                mismatched = {
                    table: {"catalog": run.row_counts.get(table), "restored": restored.get(table)}
                    for table in sorted(set(run.row_counts) | set(restored))
                    if run.row_counts.get(table) != restored.get(table)
                }
                checks["row_counts"] = {"tables": len(restored), "mismatched": mismatched}
                problems.extend(
                    f"table {t}: catalog {m['catalog']}, restored {m['restored']}"
                    for t, m in mismatched.items()
                )
                ledger_problems, ledger_note = _ledger_check(alias)
                checks["ledger"] = ledger_note or (ledger_problems or "balanced")
                if ledger_note:
                    notes.append(ledger_note)
                problems.extend(f"ledger: {p}" for p in ledger_problems)
                chain = [str(p) for p in audit_chain_verify(using=alias)]
                checks["audit_chain"] = chain or "verified"
                problems.extend(f"audit chain: {p}" for p in chain)
        except Exception as exc:
            logger.exception("restore drill failed")
            problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                if scratch is not None:
                    databases.scratch_database_drop(scratch)
            except Exception as exc:
                notes.append(f"scratch database not dropped: {exc}")
    drill.status = RestoreDrill.Status.FAILED if problems else RestoreDrill.Status.PASSED
    drill.checks, drill.problems, drill.notes = checks, problems, notes
    drill.finished_at, drill.duration_ms = timezone.now(), _ms(started)
    with transaction.atomic():
        drill.save()
        audit_record(
            action="backup.drill_" + drill.status,
            actor=actor,
            target=drill,
            data={"run": str(run.public_id) if run else None, "problems": problems[:20]},
        )
    if problems:
        _alert(
            kind="backup_failed",
            message=f"restore drill failed: {problems[0][:300]}",
            run=run,
            data={
                "stage": "restore_drill",
                "drill": str(drill.public_id),
                "problems": problems[:20],
            },
        )
    return drill


def backup_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """What beat calls every few minutes: fail interrupted runs, then run the
    backup and the drill if the policy says they are due."""
    from apps.backups.selectors import backup_due, drill_due

    now = now or timezone.now()
    if _unconfigured_development():
        return {"skipped": "backups are not configured (DEBUG)"}
    done: dict[str, Any] = {"reaped": backup_runs_reap_interrupted()}
    policy = BackupPolicy.load()
    if backup_due(policy, now):
        try:
            done["backup"] = str(backup_create(trigger=BackupRun.Trigger.SCHEDULED).public_id)
        except BackupBusy:
            done["backup"] = "busy"
    if drill_due(policy, now):
        done["drill"] = str(restore_drill_run().public_id)
    return done

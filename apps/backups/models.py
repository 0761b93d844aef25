from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def validate_age_recipients(value: str) -> None:
    from apps.backups.crypto import recipients_parse

    try:
        recipients_parse(value.split())
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class BackupPolicy(models.Model):
    """The one backup policy: when backups and restore drills run, how long
    copies are kept and when a missing backup becomes an alert. Edited by
    compliance in the admin; beat only asks it whether something is due."""

    EVERY_HOURS_CHOICES = [(h, f"every {h} h") for h in (1, 2, 3, 4, 6, 8, 12, 24)]

    enabled = models.BooleanField(default=True)
    every_hours = models.PositiveSmallIntegerField(choices=EVERY_HOURS_CHOICES, default=24)
    start_hour_utc = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(23)])
    keep_daily = models.PositiveSmallIntegerField(default=7, validators=[MinValueValidator(1)])
    keep_weekly = models.PositiveSmallIntegerField(default=4)
    keep_monthly = models.PositiveSmallIntegerField(default=12)
    max_age_hours = models.PositiveSmallIntegerField(default=26, validators=[MinValueValidator(1)])
    drill_enabled = models.BooleanField(default=True)
    drill_every_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1)]
    )
    # Public keys only (age1...), one per line, added to BACKUP_AGE_RECIPIENTS.
    extra_recipients = models.TextField(blank=True, validators=[validate_age_recipients])
    stale_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "backup policy"

    def __str__(self) -> str:
        return f"every {self.every_hours} h from {self.start_hour_utc:02d}:00 UTC"

    @classmethod
    def load(cls) -> BackupPolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class BackupTarget(models.Model):
    """Where copies go: a filesystem directory or an S3-compatible bucket.
    Credentials are never stored here: an S3 target names the environment
    prefix its keys are read from (`<prefix>_ACCESS_KEY_ID`, ...)."""

    class Kind(models.TextChoices):
        FILESYSTEM = "filesystem"
        S3 = "s3"

    name = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="restore tries lower numbers first"
    )
    path = models.CharField(max_length=500, blank=True, help_text="filesystem: the directory")
    bucket = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=200, blank=True)
    endpoint_url = models.CharField(max_length=300, blank=True)
    region = models.CharField(max_length=50, blank=True)
    credentials_env = models.CharField(
        max_length=60,
        default="BACKUP_S3",
        help_text="environment prefix of the S3 keys, never the keys",
    )
    from_environment = models.BooleanField(default=False, editable=False)
    healthy = models.BooleanField(default=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        if self.kind == self.Kind.FILESYSTEM and not self.path:
            raise ValidationError({"path": "A filesystem target needs a directory."})
        if self.kind == self.Kind.S3 and not self.bucket:
            raise ValidationError({"bucket": "An S3 target needs a bucket."})


class BackupRun(models.Model):
    """One backup: the dump's size, checksum, the key fingerprints it was
    encrypted to and the row counts of every table at the dump's snapshot
    (the restore drill checks them)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"  # every target verified
        PARTIAL = "partial"  # at least one target verified
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled"
        MANUAL = "manual"
        COMMAND = "command"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    requested_by = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dump_ms = models.PositiveBigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    engine = models.CharField(max_length=20)
    artifact_name = models.CharField(max_length=200, blank=True)
    raw_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    key_fingerprints = models.JSONField(default=list, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    alerts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"backup {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class BackupReplica(models.Model):
    """One run's copy on one target and what reading it back found."""

    class Status(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        FAILED = "failed"  # could not be written or read back
        CORRUPT = "corrupt"  # read back, checksum differs
        PRUNED = "pruned"

    run = models.ForeignKey(BackupRun, on_delete=models.CASCADE, related_name="replicas")
    target = models.ForeignKey(BackupTarget, on_delete=models.PROTECT, related_name="replicas")
    key = models.CharField(max_length=500)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256_read = models.CharField(max_length=64, blank=True)
    upload_ms = models.PositiveBigIntegerField(null=True, blank=True)
    verify_ms = models.PositiveBigIntegerField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    pruned_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "target"], name="backup_replica_run_target")
        ]
        ordering = ["target__priority", "target_id"]

    def __str__(self) -> str:
        return f"{self.target.name}: {self.status}"


class RestoreDrill(models.Model):
    """A scheduled proof that the latest backup restores: into a scratch
    database, then row counts, the ledger and the audit chain are checked."""

    class Status(models.TextChoices):
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    run = models.ForeignKey(BackupRun, on_delete=models.SET_NULL, null=True, related_name="drills")
    replica = models.ForeignKey(BackupReplica, on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    scratch_database = models.CharField(max_length=200, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"drill {self.started_at:%Y-%m-%d %H:%M} {self.status}"

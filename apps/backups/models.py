from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


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

    EVERY_HOURS_CHOICES = [
        (h, format_lazy(_("every {hours} h"), hours=h)) for h in (1, 2, 3, 4, 6, 8, 12, 24)
    ]

    enabled = models.BooleanField(_("enabled"), default=True)
    every_hours = models.PositiveSmallIntegerField(
        _("interval"), choices=EVERY_HOURS_CHOICES, default=24
    )
    start_hour_utc = models.PositiveSmallIntegerField(
        _("start hour (UTC)"), default=2, validators=[MaxValueValidator(23)]
    )
    keep_daily = models.PositiveSmallIntegerField(
        _("daily copies kept"), default=7, validators=[MinValueValidator(1)]
    )
    keep_weekly = models.PositiveSmallIntegerField(_("weekly copies kept"), default=4)
    keep_monthly = models.PositiveSmallIntegerField(_("monthly copies kept"), default=12)
    max_age_hours = models.PositiveSmallIntegerField(
        _("alert after (hours without a good backup)"),
        default=26,
        validators=[MinValueValidator(1)],
    )
    drill_enabled = models.BooleanField(_("restore drills enabled"), default=True)
    drill_every_hours = models.PositiveSmallIntegerField(
        _("restore drill interval (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    # Public keys only (age1...), one per line, added to BACKUP_AGE_RECIPIENTS.
    extra_recipients = models.TextField(
        _("extra recipients"), blank=True, validators=[validate_age_recipients]
    )
    stale_alerted_at = models.DateTimeField(
        _("stale alert sent at"), null=True, blank=True, editable=False
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("backup policy")
        verbose_name_plural = _("backup policy")

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
        FILESYSTEM = "filesystem", _("filesystem")
        S3 = "s3", _("S3 bucket")

    name = models.SlugField(_("name"), max_length=60, unique=True)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=100, help_text=_("restore tries lower numbers first")
    )
    path = models.CharField(
        _("path"), max_length=500, blank=True, help_text=_("filesystem: the directory")
    )
    bucket = models.CharField(_("bucket"), max_length=200, blank=True)
    prefix = models.CharField(_("prefix"), max_length=200, blank=True)
    endpoint_url = models.CharField(_("endpoint URL"), max_length=300, blank=True)
    region = models.CharField(_("region"), max_length=50, blank=True)
    credentials_env = models.CharField(
        _("credentials environment prefix"),
        max_length=60,
        default="BACKUP_S3",
        help_text=_("environment prefix of the S3 keys, never the keys"),
    )
    from_environment = models.BooleanField(_("from the environment"), default=False, editable=False)
    healthy = models.BooleanField(_("healthy"), default=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    last_checked_at = models.DateTimeField(
        _("last checked at"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("backup target")
        verbose_name_plural = _("backup targets")
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
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")  # every target verified
        PARTIAL = "partial", _("partial")  # at least one target verified
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        MANUAL = "manual", _("manual")
        COMMAND = "command", _("command")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    trigger = models.CharField(_("trigger"), max_length=12, choices=Trigger.choices)
    requested_by = models.CharField(_("requested by"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    started_at = models.DateTimeField(_("started at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    dump_ms = models.PositiveBigIntegerField(_("dump time (ms)"), null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(_("duration (ms)"), null=True, blank=True)
    engine = models.CharField(_("database engine"), max_length=20)
    artifact_name = models.CharField(_("artifact"), max_length=200, blank=True)
    raw_bytes = models.PositiveBigIntegerField(_("raw size (bytes)"), null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    key_fingerprints = models.JSONField(_("key fingerprints"), default=list, blank=True)
    row_counts = models.JSONField(_("row counts"), default=dict, blank=True)
    legal_hold = models.BooleanField(_("legal hold"), default=False)
    legal_hold_reason = models.CharField(_("legal hold reason"), max_length=300, blank=True)
    error = models.TextField(_("error"), blank=True)
    alerts = models.JSONField(_("alerts"), default=list, blank=True)

    class Meta:
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"backup {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class BackupReplica(models.Model):
    """One run's copy on one target and what reading it back found."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        VERIFIED = "verified", _("verified")
        FAILED = "failed", _("failed")  # could not be written or read back
        CORRUPT = "corrupt", _("corrupt")  # read back, checksum differs
        PRUNED = "pruned", _("pruned")

    run = models.ForeignKey(
        BackupRun, on_delete=models.CASCADE, related_name="replicas", verbose_name=_("backup")
    )
    target = models.ForeignKey(
        BackupTarget, on_delete=models.PROTECT, related_name="replicas", verbose_name=_("target")
    )
    key = models.CharField(_("object key"), max_length=500)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256_read = models.CharField(_("SHA-256 read back"), max_length=64, blank=True)
    upload_ms = models.PositiveBigIntegerField(_("upload time (ms)"), null=True, blank=True)
    verify_ms = models.PositiveBigIntegerField(_("verification time (ms)"), null=True, blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    pruned_at = models.DateTimeField(_("pruned at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("backup replica")
        verbose_name_plural = _("backup replicas")
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
        RUNNING = "running", _("running")
        PASSED = "passed", _("passed")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    run = models.ForeignKey(
        BackupRun,
        on_delete=models.SET_NULL,
        null=True,
        related_name="drills",
        verbose_name=_("backup"),
    )
    replica = models.ForeignKey(
        BackupReplica, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("replica")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(_("duration (ms)"), null=True, blank=True)
    scratch_database = models.CharField(_("scratch database"), max_length=200, blank=True)
    checks = models.JSONField(_("checks"), default=dict, blank=True)
    problems = models.JSONField(_("problems"), default=list, blank=True)
    notes = models.JSONField(_("notes"), default=list, blank=True)

    class Meta:
        verbose_name = _("restore drill")
        verbose_name_plural = _("restore drills")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"drill {self.started_at:%Y-%m-%d %H:%M} {self.status}"

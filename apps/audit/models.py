from __future__ import annotations

import hashlib
import json

from django.db import models
from django.utils.translation import gettext_lazy as _

# The trail is several independent hash chains ("shards"): each record is
# chained to the previous record of its shard. Writers lock only their
# shard's head, so concurrent payments rarely wait on one another, while an
# edited, inserted or deleted record still breaks its chain.
AUDIT_CHAIN_SHARDS = 8
GENESIS_HASH = "0" * 64


class AuditChainHead(models.Model):
    """The last sequence number and hash of one shard's chain. Holding it
    catches the deletion of a chain's newest records."""

    shard = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")

    def __str__(self) -> str:
        return f"shard {self.shard} @ {self.seq}"


class AuditRecord(models.Model):
    """One audited action. Append-only: never updated, never deleted (the
    model refuses, and on PostgreSQL a trigger refuses too). References are
    plain strings, not foreign keys, so no cascade can ever rewrite a record."""

    shard = models.PositiveSmallIntegerField(_("shard"))
    seq = models.PositiveBigIntegerField(_("sequence"))
    created_at = models.DateTimeField(_("created at"), db_index=True)
    action = models.CharField(_("action"), max_length=80, db_index=True)
    actor_id = models.CharField(
        _("actor ID"), max_length=64, blank=True
    )  # user public id or "terminal:<id>" / "system"
    actor_label = models.CharField(_("actor"), max_length=200, blank=True)
    merchant_id = models.CharField(_("merchant ID"), max_length=36, blank=True, db_index=True)
    target_type = models.CharField(_("target type"), max_length=80, blank=True)
    target_id = models.CharField(_("target ID"), max_length=64, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    ip = models.CharField(_("IP address"), max_length=45, blank=True)
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        constraints = [
            models.UniqueConstraint(fields=["shard", "seq"], name="audit_shard_seq_unique")
        ]
        indexes = [
            models.Index(fields=["merchant_id", "-created_at"], name="audit_merchant_recent"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or self.actor_id or 'system'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise RuntimeError("audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("audit records are append-only")

    def content(self) -> dict:
        return {
            "shard": self.shard,
            "seq": self.seq,
            "created_at": self.created_at.isoformat(),
            "action": self.action,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "merchant_id": self.merchant_id,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "data": self.data,
            "ip": self.ip,
            "request_id": self.request_id,
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(
            self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
        return hashlib.sha256(f"{self.prev_hash}|{canonical}".encode()).hexdigest()


class SecurityEvent(models.Model):
    """A security-relevant happening (failed login, lockout, bad signature,
    replay, permission denial). Each is also written to the audit trail."""

    class Severity(models.TextChoices):
        INFO = "info", _("info")
        WARNING = "warning", _("warning")
        CRITICAL = "critical", _("critical")

    created_at = models.DateTimeField(_("created at"), db_index=True)
    kind = models.CharField(_("kind"), max_length=60, db_index=True)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.WARNING
    )
    merchant_id = models.CharField(_("merchant ID"), max_length=36, blank=True)
    actor_id = models.CharField(_("actor ID"), max_length=64, blank=True)
    ip = models.CharField(_("IP address"), max_length=45, blank=True)
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        indexes = [
            models.Index(fields=["merchant_id", "-created_at"], name="secevent_merchant_recent"),
            # SecurityEventAdmin's severity filter, newest (highest id) first:
            # the rare critical events must not take a walk through every row.
            models.Index(fields=["severity", "-id"], name="secevent_severity_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.severity})"

"""Terminals, their public keys and the database replay cache (DESIGN.md §5)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import TenantOwnedModel


class Terminal(TenantOwnedModel):
    """A merchant's POS terminal, bound to one shop location. Its `public_id`
    is the terminal id: the `keyid` of every request it signs."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending activation")
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        RETIRED = "retired", _("retired")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    serial_number = models.CharField(_("serial number"), max_length=64)
    model = models.CharField(_("model"), max_length=64, blank=True)
    shop = models.ForeignKey("accounts.Shop", on_delete=models.PROTECT, related_name="terminals")
    bind_radius_m = models.PositiveIntegerField(_("bind radius (m)"), default=200)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    # The activation code is shown once in the portal; only its SHA-256 is
    # kept. It also serves re-keying ("rotate" in the portal).
    activation_code_hash = models.CharField(max_length=64, blank=True, db_index=True)
    activation_code_expires_at = models.DateTimeField(null=True, blank=True)
    activation_code_used_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    last_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    last_location_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "serial_number"], name="terminal_serial_unique_per_merchant"
            ),
            models.CheckConstraint(
                condition=models.Q(bind_radius_m__gte=10, bind_radius_m__lte=50_000),
                name="terminal_bind_radius_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.serial_number} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class TerminalKey(models.Model):
    """An Ed25519 public key of a terminal. The newest unexpired key is
    current; after a rotation the previous one keeps working until
    `expires_at` (the grace period), so a terminal never loses its service."""

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="keys")
    public_key = models.CharField(max_length=64)  # base64 of the raw 32 bytes
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("terminal key")
        verbose_name_plural = _("terminal keys")
        indexes = [models.Index(fields=["terminal", "-created_at"], name="terminalkey_recent")]
        constraints = [
            models.UniqueConstraint(fields=["public_key"], name="terminalkey_public_key_unique")
        ]

    def __str__(self) -> str:
        return f"key {self.public_key[:10]}… of {self.terminal_id}"


class TerminalNonce(models.Model):
    """A nonce seen in a signed request, remembered for the replay window.
    Used only without Redis (there, SET NX with a TTL does the same); expired
    rows are pruned by a periodic task."""

    scope = models.CharField(max_length=64)  # terminal id, or "activation"
    nonce = models.CharField(max_length=128)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "nonce"], name="terminalnonce_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.nonce}"

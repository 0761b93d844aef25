"""Secrets other than the login password: the payer's payment password,
wallet API tokens, staff invitations. Only verifiers and hashes are stored."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import TenantOwnedModel


class PaymentPassword(models.Model):
    """A payer's 6-digit payment password (支付密码) as a peppered hash:
    PBKDF2-HMAC-SHA256 over HMAC-SHA256(PAYMENT_PIN_PEPPER, payer || pin).
    Six digits cannot be protected by hashing cost alone; the pepper (never
    in the database) and the lockout are the protection (DESIGN.md §4)."""

    payer = models.OneToOneField(
        "accounts.Payer",
        on_delete=models.CASCADE,
        related_name="payment_password",
        verbose_name=_("payer"),
    )
    salt = models.CharField(_("salt"), max_length=64)
    iterations = models.PositiveIntegerField(_("iterations"))
    digest = models.CharField(_("digest"), max_length=128)
    set_at = models.DateTimeField(_("set at"), default=timezone.now)
    failed_attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment password")
        verbose_name_plural = _("payment passwords")

    def __str__(self) -> str:
        return f"payment password of {self.payer_id}"

    def is_locked(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class ApiToken(models.Model):
    """A wallet app's bearer token. Only its SHA-256 is stored; the token
    itself is shown once, at login."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"token {self.prefix}…"


class StaffInvitation(TenantOwnedModel):
    """An invitation to join a merchant's staff with a role. The link carries
    a random token; only its SHA-256 is stored."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=20)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("staff invitation")
        verbose_name_plural = _("staff invitations")

    def __str__(self) -> str:
        return f"invitation of {self.email}"

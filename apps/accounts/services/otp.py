"""OTP (django-otp): TOTP enrolment with a QR code and static backup codes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_otp import devices_for_user
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.errors import AccountsError
from apps.accounts.models import User
from apps.audit.services import audit_record, security_event_record

BACKUP_CODE_COUNT = 10


def otp_has_device(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def otp_enrol_start(*, user: User, request: Any = None) -> TOTPDevice:
    """A new, unconfirmed TOTP device (replacing any earlier unconfirmed one);
    it counts only once confirmed with a code from the authenticator app."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        audit_record(action="otp.enrolment_started", actor=user, target=user, request=request)
    return device


def otp_enrol_confirm(
    *, user: User, token: str, request: Any = None
) -> tuple[TOTPDevice, list[str]]:
    """Confirms the pending TOTP device with a code from the app. Earlier
    devices are retired and fresh backup codes issued: (device, codes), the
    codes shown once."""
    token = (token or "").strip()
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise AccountsError(
                "otp_not_enrolling", "Start the authenticator set-up first.", field="otp_token"
            )
        if not token:
            raise AccountsError(
                "otp_required",
                "Enter the 6-digit code from your authenticator app.",
                field="otp_token",
            )
        if not device.verify_token(token):
            raise AccountsError(
                "otp_invalid",
                "That code is wrong or expired; try the current one.",
                field="otp_token",
            )
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _backup_codes_replace(user)
        audit_record(action="otp.enrolled", actor=user, target=user, request=request)
    return device, codes


def _backup_codes_replace(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=code) for code in codes])
    return codes


def otp_backup_codes_regenerate(*, user: User, request: Any = None) -> list[str]:
    with transaction.atomic():
        codes = _backup_codes_replace(user)
        audit_record(
            action="otp.backup_codes_regenerated", actor=user, target=user, request=request
        )
    return codes


def otp_verify(
    *, user: User, token: str, allow_backup: bool = True, request: Any = None
) -> Device | None:
    """The confirmed device (TOTP, or a single-use backup code when allowed)
    that accepts `token`, or None; a wrong code is a security event."""
    token = (token or "").strip().replace(" ", "")
    if not token:
        return None
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if not allow_backup and isinstance(device, StaticDevice):
                continue
            if device.verify_token(token):
                return device
    security_event_record(
        kind="otp_failed", actor=user, data={"user": str(user.public_id)}, request=request
    )
    return None

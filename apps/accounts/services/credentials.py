"""The three passwords and the wallet's API tokens (DESIGN.md §4).

- login password: Django's hasher; lockout after LOGIN_LOCKOUT_ATTEMPTS
  failures for LOGIN_LOCKOUT_SECONDS (apps.accounts.backends calls these).
- payment password: HMAC-SHA256 with PAYMENT_PIN_PEPPER, then PBKDF2 with a
  small iteration count (a few milliseconds); 5 wrong attempts lock payments.
- transaction password (operator PIN): the salted verifier of pins.py that
  terminals check offline; the server checks the same record, with lockout.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.errors import AccountsError, PaymentPasswordLocked, PaymentPasswordNotSet
from apps.accounts.models import (
    ApiToken,
    KycApplication,
    Membership,
    OperatorPin,
    Payer,
    PaymentPassword,
    User,
)
from apps.accounts.models.identity import ReviewStatus
from apps.accounts.pins import pin_verifier_check, pin_verifier_new, pin_weakness
from apps.audit.models import SecurityEvent
from apps.audit.services import audit_record, security_event_record

PAYMENT_PASSWORD_ITERATIONS = 1_000


# --- login password ---------------------------------------------------------


def login_failure_record(*, user: User, request: Any = None) -> bool:
    """Counts a failed login. Returns True when this failure locked the
    account (a security event)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(failed_login_count=F("failed_login_count") + 1)
        user.refresh_from_db(fields=["failed_login_count", "login_locked_until"])
        if user.failed_login_count < settings.LOGIN_LOCKOUT_ATTEMPTS:
            return False
        until = timezone.now() + datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        User.objects.filter(pk=user.pk).update(login_locked_until=until, failed_login_count=0)
        user.login_locked_until = until
        security_event_record(
            kind="login_lockout",
            severity=SecurityEvent.Severity.WARNING,
            actor=user,
            data={
                "user": str(user.public_id),
                "until": until.isoformat(),
                "attempts": settings.LOGIN_LOCKOUT_ATTEMPTS,
            },
            request=request,
        )
    return True


def login_success_record(*, user: User) -> None:
    if user.failed_login_count:
        User.objects.filter(pk=user.pk).update(failed_login_count=0)


def login_is_locked(user: User) -> bool:
    return user.login_locked_until is not None and user.login_locked_until > timezone.now()


def login_unlock(*, user: User, actor: User, request: Any = None) -> None:
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(login_locked_until=None, failed_login_count=0)
        audit_record(action="login.unlocked", actor=actor, target=user, request=request)


# --- payment password -------------------------------------------------------


def _payment_password_digest(payer: Payer, password: str, *, salt: bytes, iterations: int) -> str:
    # The pepper never reaches the database: a stolen table cannot be brute
    # forced over the million 6-digit values without it.
    peppered = hmac.new(
        settings.PAYMENT_PIN_PEPPER.encode(),
        f"{payer.public_id}:{password}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(
        hashlib.pbkdf2_hmac("sha256", peppered, salt, iterations, dklen=32)
    ).decode()


def _payer_identity(payer: Payer) -> tuple[datetime.date | None, str, str]:
    kyc = (
        KycApplication.objects.filter(user_id=payer.user_id, subject=KycApplication.Subject.PAYER)
        .exclude(status=ReviewStatus.REJECTED)
        .order_by("-created_at", "-pk")
        .first()
    )
    if kyc is None:
        return None, "", ""
    return kyc.birth_date, kyc.id_number, kyc.phone


def payment_password_set(
    *,
    payer: Payer,
    password: str,
    otp_token: str | None = None,
    otp_verified: bool = False,
    request: Any = None,
) -> PaymentPassword:
    """Sets or changes the payer's payment password. Needs a fresh OTP: a
    current code in `otp_token`, or `otp_verified` when the caller has just
    checked one. Weak passwords are refused with the rule they break. Resets
    any lock."""
    if otp_token is not None and not otp_verified:
        from apps.accounts.services.otp import otp_verify

        if otp_verify(user=payer.user, token=otp_token, request=request) is None:
            raise AccountsError(
                "otp_invalid", "That one-time code is wrong or expired.", field="otp_token"
            )
        otp_verified = True
    if not otp_verified:
        raise AccountsError(
            "otp_required",
            "Confirm with a fresh one-time code to set the payment password.",
            field="otp_token",
        )
    birth_date, id_number, phone = _payer_identity(payer)
    weakness = pin_weakness(password, birth_date=birth_date, id_number=id_number, phone=phone)
    if weakness:
        raise AccountsError(weakness[0], weakness[1], field="password")
    salt = secrets.token_bytes(16)
    digest = _payment_password_digest(
        payer, password, salt=salt, iterations=PAYMENT_PASSWORD_ITERATIONS
    )
    with transaction.atomic():
        record, created = PaymentPassword.objects.update_or_create(
            payer=payer,
            defaults={
                "salt": base64.b64encode(salt).decode(),
                "iterations": PAYMENT_PASSWORD_ITERATIONS,
                "digest": digest,
                "set_at": timezone.now(),
                "failed_attempts": 0,
                "locked_until": None,
            },
        )
        audit_record(
            action="payment_password.set" if created else "payment_password.changed",
            actor=payer.user,
            target=payer,
            request=request,
        )
    return record


def _attempt_counted(
    record: Any, *, ok: bool, max_attempts: int, lock_seconds: int, now: datetime.datetime
) -> str:
    """Counts one try of a lockable credential (its failed_attempts and
    locked_until, row locked by the caller): a right one clears the count;
    `max_attempts` wrong in a row lock it for `lock_seconds` and start the
    count again. Returns "ok", "wrong", or "locked" (this try locked it)."""
    if ok:
        if record.failed_attempts:
            record.failed_attempts = 0
            record.save(update_fields=["failed_attempts"])
        return "ok"
    record.failed_attempts += 1
    if record.failed_attempts < max_attempts:
        record.save(update_fields=["failed_attempts"])
        return "wrong"
    record.locked_until = now + datetime.timedelta(seconds=lock_seconds)
    record.failed_attempts = 0
    record.save(update_fields=["failed_attempts", "locked_until"])
    return "locked"


def payment_password_verify(*, payer: Payer, password: str, request: Any = None) -> bool:
    """True when `password` is the payer's payment password. A wrong one
    counts; the PAYMENT_PASSWORD_MAX_ATTEMPTS-th locks payments for
    PAYMENT_PASSWORD_LOCK_SECONDS (a security event) until then or until
    compliance unlocks. Raises PaymentPasswordLocked while locked (even for
    the right password) and PaymentPasswordNotSet when there is none."""
    with transaction.atomic():
        # The row lock serialises concurrent guesses, so no burst of
        # parallel attempts slips past the counter.
        record = PaymentPassword.objects.select_for_update().filter(payer=payer).first()
        if record is None:
            raise PaymentPasswordNotSet(
                "payment_password_not_set", "The payer has not set a payment password."
            )
        now = timezone.now()
        if record.is_locked(now):
            raise PaymentPasswordLocked(
                "payment_password_locked",
                "Payments are locked after too many wrong payment passwords.",
                until=record.locked_until,
            )
        expected = _payment_password_digest(
            payer, password, salt=base64.b64decode(record.salt), iterations=record.iterations
        )
        verdict = _attempt_counted(
            record,
            ok=hmac.compare_digest(expected, record.digest),
            max_attempts=settings.PAYMENT_PASSWORD_MAX_ATTEMPTS,
            lock_seconds=settings.PAYMENT_PASSWORD_LOCK_SECONDS,
            now=now,
        )
        if verdict == "ok":
            return True
        if verdict == "locked":
            security_event_record(
                kind="payment_password_lockout",
                severity=SecurityEvent.Severity.WARNING,
                actor=payer.user,
                data={"payer": str(payer.public_id), "until": record.locked_until.isoformat()},
                request=request,
            )
        return False


def payment_password_is_locked(payer: Payer) -> bool:
    record = PaymentPassword.objects.filter(payer=payer).first()
    return record is not None and record.is_locked()


def payment_password_unlock(*, payer: Payer, actor: User, reason: str, request: Any = None) -> None:
    """Compliance lifts a payment-password lock."""
    if not reason.strip():
        raise AccountsError("reason_required", "Give a reason for the unlock.", field="reason")
    with transaction.atomic():
        PaymentPassword.objects.filter(payer=payer).update(locked_until=None, failed_attempts=0)
        audit_record(
            action="payment_password.unlocked",
            actor=actor,
            target=payer,
            data={"reason": reason},
            request=request,
        )


# --- operator PIN (transaction password) -------------------------------------


def _staff_identity(user: User) -> tuple[datetime.date | None, str, str]:
    kyc = (
        KycApplication.objects.filter(
            user=user, status__in=[ReviewStatus.SUBMITTED, ReviewStatus.APPROVED]
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if kyc is None:
        return None, "", ""
    return kyc.birth_date, kyc.id_number, kyc.phone


def operator_pin_set(
    *, membership: Membership, pin: str, actor: User, request: Any = None
) -> OperatorPin:
    """Sets a cashier's transaction password as the salted verifier terminals
    check offline. Weak PINs are refused with the rule they break. The
    portal page that calls this requires a fresh OTP step-up."""
    birth_date, id_number, phone = _staff_identity(membership.user)
    weakness = pin_weakness(pin, birth_date=birth_date, id_number=id_number, phone=phone)
    if weakness:
        raise AccountsError(weakness[0], weakness[1], field="pin")
    salt, iterations, verifier = pin_verifier_new(pin)
    with transaction.atomic():
        record, created = OperatorPin.objects.update_or_create(
            membership=membership,
            defaults={
                "merchant_id": membership.merchant_id,
                "salt": salt,
                "iterations": iterations,
                "verifier": verifier,
                "set_at": timezone.now(),
                "failed_attempts": 0,
                "locked_until": None,
            },
        )
        audit_record(
            action="operator_pin.set" if created else "operator_pin.changed",
            actor=actor,
            merchant=membership.merchant,
            target=membership,
            request=request,
        )
    return record


def operator_pin_is_locked(membership: Membership) -> bool:
    record = OperatorPin.objects.filter(membership=membership).only("locked_until").first()
    return (
        record is not None
        and record.locked_until is not None
        and record.locked_until > timezone.now()
    )


def operator_pin_verify(*, membership: Membership, pin: str, request: Any = None) -> bool:
    """True when `pin` is the operator's transaction password. False for a
    wrong PIN, a missing one, and while locked (OPERATOR_PIN_MAX_ATTEMPTS
    wrong in a row lock it for OPERATOR_PIN_LOCK_SECONDS, a security event);
    operator_pin_is_locked() tells the locked case apart."""
    with transaction.atomic():
        record = OperatorPin.objects.select_for_update().filter(membership=membership).first()
        if record is None:
            return False
        now = timezone.now()
        if record.locked_until is not None and record.locked_until > now:
            return False
        verdict = _attempt_counted(
            record,
            ok=pin_verifier_check(
                pin,
                salt_b64=record.salt,
                iterations=record.iterations,
                verifier_b64=record.verifier,
            ),
            max_attempts=settings.OPERATOR_PIN_MAX_ATTEMPTS,
            lock_seconds=settings.OPERATOR_PIN_LOCK_SECONDS,
            now=now,
        )
        if verdict == "ok":
            return True
        if verdict == "locked":
            security_event_record(
                kind="operator_pin_lockout",
                merchant=membership.merchant,
                actor=membership.user,
                data={
                    "membership": str(membership.public_id),
                    "until": record.locked_until.isoformat(),
                },
                request=request,
            )
        return False


# --- wallet API tokens -------------------------------------------------------


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_issue(*, user: User, request: Any = None) -> tuple[ApiToken, str]:
    """A new bearer token for the wallet app: (record, token). The token is
    returned once and only its SHA-256 is stored."""
    token = "anfu_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        record = ApiToken.objects.create(
            user=user,
            key_hash=api_token_hash(token),
            prefix=token[5:13],
            expires_at=timezone.now() + datetime.timedelta(seconds=settings.WALLET_TOKEN_SECONDS),
        )
        audit_record(action="api_token.issued", actor=user, target=record, request=request)
    return record, token


def api_token_revoke(*, token: ApiToken, actor: Any, request: Any = None) -> None:
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="api_token.revoked", actor=actor, target=token, request=request)

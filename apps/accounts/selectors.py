"""Reads for accounts."""

from __future__ import annotations

from typing import Any

from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import (
    KybApplication,
    KycApplication,
    Merchant,
    Payer,
    PaymentPassword,
    User,
)


def kyc_latest_for_user(
    *, user: User, subject: str = KycApplication.Subject.PAYER
) -> KycApplication | None:
    return (
        KycApplication.objects.filter(user=user, subject=subject)
        .order_by("-created_at", "-pk")
        .first()
    )


def kyb_latest_for_merchant(*, merchant: Merchant) -> KybApplication | None:
    return (
        KybApplication.objects.for_merchant(merchant)
        .select_related("legal_rep")
        .order_by("-created_at", "-pk")
        .first()
    )


def kyc_public_state(kyc: KycApplication | None) -> dict[str, Any]:
    """What the applicant may see of their KYC: never the duplicate flag."""
    if kyc is None:
        return {"status": "none"}
    state: dict[str, Any] = {
        "id": str(kyc.public_id),
        "status": kyc.status,
        "submitted_at": kyc.submitted_at,
    }
    if kyc.status == KycApplication.Status.REJECTED:
        state.update(
            rejection_reason=kyc.rejection_reason,
            rejection_message=kyc.get_rejection_reason_display(),
            note=kyc.decision_note,
            may_resubmit=kyc.may_resubmit,
        )
    if kyc.status == KycApplication.Status.APPROVED:
        state.update(account_class=kyc.account_class, expires_at=kyc.expires_at)
    return state


def payer_status(*, payer: Payer) -> dict[str, Any]:
    password = PaymentPassword.objects.filter(payer=payer).first()
    return {
        "payer": str(payer.public_id),
        "account_class": payer.account_class,
        "kyc": kyc_public_state(kyc_latest_for_user(user=payer.user)),
        "otp_enrolled": TOTPDevice.objects.filter(user=payer.user, confirmed=True).exists(),
        "payment_password_set": password is not None,
        "payments_locked_until": password.locked_until
        if password and password.is_locked()
        else None,
    }


def review_queue_next(
    model: type[KycApplication] | type[KybApplication],
) -> KycApplication | KybApplication | None:
    """The application a reviewer takes next: the oldest submitted one (the
    (status, submitted_at) index serves it)."""
    return (
        model.objects.filter(status=model.Status.SUBMITTED).order_by("submitted_at", "pk").first()
    )

"""KYC and KYB: submission, review decisions, expiry, audited PII reveals.
Each function is one business action in its own transaction, audited; a
status change also writes its ReviewStatusChange row."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.crypto import blind_index, encrypt_bytes
from apps.accounts.errors import AccountsError
from apps.accounts.models import (
    BeneficialOwner,
    IdentityDocument,
    KybApplication,
    KycApplication,
    Merchant,
    Payer,
    ReviewStatusChange,
    Shop,
    User,
)
from apps.accounts.models.identity import RejectionReason, ReviewStatus
from apps.accounts.validation import (
    CleanDocument,
    id_number_clean,
    name_clean,
    phone_clean,
    uscc_clean,
)
from apps.audit.services import audit_record

LIVE_STATUSES = (ReviewStatus.SUBMITTED, ReviewStatus.APPROVED)


@dataclass(frozen=True)
class PersonInput:
    """A person's identity as submitted (already-cleaned documents)."""

    legal_name: str
    id_number: str
    phone: str
    id_front: CleanDocument
    id_back: CleanDocument


def person_clean(
    *,
    legal_name: str,
    id_number: str,
    phone: str,
    id_front: CleanDocument,
    id_back: CleanDocument,
    prefix: str = "",
) -> PersonInput:
    return PersonInput(
        legal_name=name_clean(legal_name, field=f"{prefix}legal_name"),
        id_number=id_number_clean(id_number, field=f"{prefix}id_number"),
        phone=phone_clean(phone, field=f"{prefix}phone"),
        id_front=id_front,
        id_back=id_back,
    )


def _status_change(
    obj: KycApplication | KybApplication, *, to: str, actor: Any, reason: str = ""
) -> None:
    previous = obj.status
    obj.status = to
    kwargs = {"kyc": obj} if isinstance(obj, KycApplication) else {"kyb": obj}
    ReviewStatusChange.objects.create(
        from_status=previous,
        to_status=to,
        actor=actor if isinstance(actor, User) else None,
        reason=reason,
        **kwargs,
    )


def _kyc_create(
    *,
    person: PersonInput,
    subject: str,
    user: User | None,
    merchant: Merchant | None,
    actor: Any,
    request: Any,
) -> KycApplication:
    """Inside the caller's transaction: the application, its documents, the
    duplicate check by blind index, the history row and the audit record."""
    id_index = blind_index("id_number", person.id_number)
    kyc = KycApplication(
        subject=subject,
        user=user,
        merchant=merchant,
        legal_name=person.legal_name,
        id_number=person.id_number,
        id_number_index=id_index,
        phone=person.phone,
        phone_index=blind_index("phone", person.phone),
        status=ReviewStatus.DRAFT,
    )
    # The same person registering twice: another live application with this
    # ID number that is not this same account (and, for a merchant's people,
    # not this same merchant). Flagged for compliance, never told to the applicant.
    others = KycApplication.objects.filter(id_number_index=id_index, status__in=LIVE_STATUSES)
    if user is not None:
        others = others.exclude(user=user)
    if merchant is not None:
        others = others.exclude(merchant=merchant)
    kyc.duplicate_of = others.order_by("created_at", "pk").first()
    kyc.save()
    for kind, doc in (
        (IdentityDocument.Kind.ID_FRONT, person.id_front),
        (IdentityDocument.Kind.ID_BACK, person.id_back),
    ):
        IdentityDocument.objects.create(
            kyc=kyc,
            kind=kind,
            content_type=doc.content_type,
            size=len(doc.data),
            ciphertext=encrypt_bytes(doc.data),
        )
    _status_change(kyc, to=ReviewStatus.SUBMITTED, actor=actor)
    kyc.submitted_at = timezone.now()
    kyc.save(update_fields=["status", "submitted_at"])
    audit_record(
        action="kyc.submitted",
        actor=actor,
        merchant=merchant,
        target=kyc,
        data={
            "subject": subject,
            "duplicate_of": str(kyc.duplicate_of.public_id) if kyc.duplicate_of else None,
        },
        request=request,
    )
    return kyc


def kyc_resubmission_check(*, user: User, subject: str = KycApplication.Subject.PAYER) -> None:
    latest = (
        KycApplication.objects.filter(user=user, subject=subject)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None:
        return
    if latest.status == ReviewStatus.SUBMITTED:
        raise AccountsError(
            "kyc_pending", "Your real-name verification is already under review.", field=None
        )
    if latest.status == ReviewStatus.APPROVED:
        raise AccountsError("kyc_already_approved", "Your real name is already verified.")
    if latest.status == ReviewStatus.REJECTED and not latest.may_resubmit:
        raise AccountsError(
            "kyc_rejected_final",
            "Your verification was rejected and cannot be resubmitted; contact support.",
        )


def payer_kyc_submit(*, payer: Payer, person: PersonInput, request: Any = None) -> KycApplication:
    """A payer submits real-name KYC (with ID card images) for review."""
    with transaction.atomic():
        Payer.objects.select_for_update().get(pk=payer.pk)  # one submission at a time per payer
        kyc_resubmission_check(user=payer.user)
        return _kyc_create(
            person=person,
            subject=KycApplication.Subject.PAYER,
            user=payer.user,
            merchant=None,
            actor=payer.user,
            request=request,
        )


def kyc_approve(
    *, kyc: KycApplication, actor: User, reason: str, account_class: str = "", request: Any = None
) -> KycApplication:
    """Compliance approves a submitted KYC. For a payer this sets the account
    class (I, II or III) that the limits of later payments follow."""
    if not reason.strip():
        raise AccountsError("reason_required", "Give a reason for the decision.", field="reason")
    with transaction.atomic():
        kyc = KycApplication.objects.select_for_update().get(pk=kyc.pk)
        if kyc.status != ReviewStatus.SUBMITTED:
            raise AccountsError(
                "kyc_not_submitted",
                f"Only a submitted application can be approved (this one is {kyc.status}).",
            )
        if kyc.subject == KycApplication.Subject.PAYER:
            if account_class not in (
                Payer.AccountClass.CLASS_I,
                Payer.AccountClass.CLASS_II,
                Payer.AccountClass.CLASS_III,
            ):
                raise AccountsError(
                    "account_class_required",
                    "Choose the account class (I, II or III).",
                    field="account_class",
                )
            Payer.objects.filter(user=kyc.user).update(account_class=account_class)
            kyc.account_class = account_class
        now = timezone.now()
        _status_change(kyc, to=ReviewStatus.APPROVED, actor=actor, reason=reason)
        kyc.decided_at, kyc.decided_by, kyc.decision_note = now, actor, reason
        kyc.expires_at = now + datetime.timedelta(days=settings.KYC_VALIDITY_DAYS)
        kyc.save(
            update_fields=[
                "status",
                "account_class",
                "decided_at",
                "decided_by",
                "decision_note",
                "expires_at",
            ]
        )
        audit_record(
            action="kyc.approved",
            actor=actor,
            merchant=kyc.merchant,
            target=kyc,
            data={"account_class": account_class, "reason": reason},
            request=request,
        )
    return kyc


def _application_reject(
    application: Any,
    *,
    kind: str,
    actor: User,
    reason_code: str,
    note: str,
    may_resubmit: bool,
    request: Any,
) -> Any:
    """The one rejection of a submitted KYC or KYB application (`kind` names
    it in error codes and audit actions)."""
    if reason_code not in RejectionReason.values:
        raise AccountsError("reason_required", "Choose a rejection reason.", field="reason_code")
    if not note.strip():
        raise AccountsError("reason_required", "Explain the rejection.", field="reason")
    with transaction.atomic():
        application = type(application).objects.select_for_update().get(pk=application.pk)
        if application.status != ReviewStatus.SUBMITTED:
            raise AccountsError(
                f"{kind}_not_submitted",
                f"Only a submitted application can be rejected (this one is {application.status}).",
            )
        _status_change(
            application, to=ReviewStatus.REJECTED, actor=actor, reason=f"{reason_code}: {note}"
        )
        application.decided_at, application.decided_by = timezone.now(), actor
        application.rejection_reason = reason_code
        application.decision_note, application.may_resubmit = note, may_resubmit
        application.save(
            update_fields=[
                "status",
                "decided_at",
                "decided_by",
                "rejection_reason",
                "decision_note",
                "may_resubmit",
            ]
        )
        audit_record(
            action=f"{kind}.rejected",
            actor=actor,
            merchant=application.merchant,
            target=application,
            data={"reason_code": reason_code, "note": note, "may_resubmit": may_resubmit},
            request=request,
        )
    return application


def kyc_reject(
    *,
    kyc: KycApplication,
    actor: User,
    reason_code: str,
    note: str,
    may_resubmit: bool,
    request: Any = None,
) -> KycApplication:
    """Compliance rejects a submitted KYC with a structured reason, saying
    whether the applicant may submit again."""
    return _application_reject(
        kyc,
        kind="kyc",
        actor=actor,
        reason_code=reason_code,
        note=note,
        may_resubmit=may_resubmit,
        request=request,
    )


def kyc_expire_due(*, now: datetime.datetime | None = None) -> int:
    """Marks approved KYC past its validity as expired; a payer whose KYC
    expired drops back to unverified (cannot pay until verified again)."""
    now = now or timezone.now()
    expired = 0
    due = KycApplication.objects.filter(
        status=ReviewStatus.APPROVED, expires_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due[:1000]):
        with transaction.atomic():
            kyc = KycApplication.objects.select_for_update().get(pk=pk)
            if kyc.status != ReviewStatus.APPROVED:
                continue
            _status_change(kyc, to=ReviewStatus.EXPIRED, actor=None, reason="validity ended")
            kyc.save(update_fields=["status"])
            if kyc.subject == KycApplication.Subject.PAYER:
                Payer.objects.filter(user=kyc.user).update(
                    account_class=Payer.AccountClass.UNVERIFIED
                )
            audit_record(action="kyc.expired", actor=None, merchant=kyc.merchant, target=kyc)
            expired += 1
    return expired


@dataclass(frozen=True)
class ShopInput:
    name: str
    address: str
    latitude: Decimal
    longitude: Decimal
    opens_at: datetime.time = datetime.time(8, 0)
    closes_at: datetime.time = datetime.time(22, 0)


@dataclass(frozen=True)
class OwnerInput:
    person: PersonInput
    share_percent: Decimal


def kyb_resubmission_check(*, merchant: Merchant) -> None:
    latest = KybApplication.objects.for_merchant(merchant).order_by("-created_at", "-pk").first()
    if latest is None:
        return
    if latest.status == ReviewStatus.SUBMITTED:
        raise AccountsError("kyb_pending", "Your business verification is already under review.")
    if latest.status == ReviewStatus.APPROVED:
        raise AccountsError("kyb_already_approved", "Your business is already verified.")
    if latest.status == ReviewStatus.REJECTED and not latest.may_resubmit:
        raise AccountsError(
            "kyb_rejected_final",
            "Your verification was rejected and cannot be resubmitted; contact support.",
        )


def kyb_submit(
    *,
    merchant: Merchant,
    actor: User,
    company_name: str,
    uscc: str,
    mcc: str,
    registered_address: str,
    licence: CleanDocument,
    legal_rep: PersonInput,
    legal_rep_is_actor: bool = False,
    shops: Iterable[ShopInput] = (),
    beneficial_owners: Iterable[OwnerInput] = (),
    request: Any = None,
) -> KybApplication:
    """A merchant submits KYB: its credit code and licence, its legal
    representative's KYC, beneficial owners and registered shop addresses.
    All of it is saved together, or nothing is."""
    uscc = uscc_clean(uscc)
    if not company_name.strip():
        raise AccountsError(
            "company_name_required",
            "The registered company name is required.",
            field="company_name",
        )
    if not (len(mcc) == 4 and mcc.isdigit()):
        raise AccountsError("invalid_mcc", "The business category is a 4-digit MCC.", field="mcc")
    if not registered_address.strip():
        raise AccountsError(
            "address_required", "The registered address is required.", field="registered_address"
        )
    shops = list(shops)
    if not shops:
        raise AccountsError(
            "shop_required", "Register at least one shop address.", field="shop_name"
        )
    owners = list(beneficial_owners)
    if sum((o.share_percent for o in owners), Decimal(0)) > 100:
        raise AccountsError(
            "invalid_share",
            "Beneficial owners' shares add up to more than 100%.",
            field="bo_share_percent",
        )
    with transaction.atomic():
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        kyb_resubmission_check(merchant=merchant)
        rep = _kyc_create(
            person=legal_rep,
            subject=KycApplication.Subject.LEGAL_REP,
            user=actor if legal_rep_is_actor else None,
            merchant=merchant,
            actor=actor,
            request=request,
        )
        uscc_index = blind_index("uscc", uscc)
        duplicate = (
            KybApplication.objects.filter(uscc_index=uscc_index, status__in=LIVE_STATUSES)
            .exclude(merchant=merchant)
            .order_by("created_at", "pk")
            .first()
        )
        kyb = KybApplication.objects.create(
            merchant=merchant,
            company_name=company_name.strip(),
            uscc=uscc,
            uscc_index=uscc_index,
            mcc=mcc,
            registered_address=registered_address.strip(),
            legal_rep=rep,
            submitted_by=actor,
            duplicate_of=duplicate,
        )
        IdentityDocument.objects.create(
            kyb=kyb,
            kind=IdentityDocument.Kind.BUSINESS_LICENCE,
            content_type=licence.content_type,
            size=len(licence.data),
            ciphertext=encrypt_bytes(licence.data),
        )
        for owner in owners:
            owner_kyc = _kyc_create(
                person=owner.person,
                subject=KycApplication.Subject.BENEFICIAL_OWNER,
                user=None,
                merchant=merchant,
                actor=actor,
                request=request,
            )
            BeneficialOwner.objects.create(
                merchant=merchant, kyb=kyb, kyc=owner_kyc, share_percent=owner.share_percent
            )
        for shop in shops:
            Shop.objects.create(
                merchant=merchant,
                name=shop.name,
                address=shop.address,
                latitude=shop.latitude,
                longitude=shop.longitude,
                opens_at=shop.opens_at,
                closes_at=shop.closes_at,
            )
        _status_change(kyb, to=ReviewStatus.SUBMITTED, actor=actor)
        kyb.submitted_at = timezone.now()
        kyb.save(update_fields=["status", "submitted_at"])
        audit_record(
            action="kyb.submitted",
            actor=actor,
            merchant=merchant,
            target=kyb,
            data={
                "mcc": mcc,
                "shops": len(shops),
                "beneficial_owners": len(owners),
                "duplicate_of": str(duplicate.public_id) if duplicate else None,
            },
            request=request,
        )
    return kyb


def kyb_approve(
    *, kyb: KybApplication, actor: User, reason: str, request: Any = None
) -> KybApplication:
    """Compliance approves a merchant's KYB: the merchant becomes ACTIVE (may
    activate terminals and take payments). Its legal representative's KYC
    must already be approved."""
    if not reason.strip():
        raise AccountsError("reason_required", "Give a reason for the decision.", field="reason")
    with transaction.atomic():
        kyb = KybApplication.objects.select_for_update().select_related("legal_rep").get(pk=kyb.pk)
        if kyb.status != ReviewStatus.SUBMITTED:
            raise AccountsError(
                "kyb_not_submitted",
                f"Only a submitted application can be approved (this one is {kyb.status}).",
            )
        if kyb.legal_rep.status != ReviewStatus.APPROVED:
            raise AccountsError(
                "legal_rep_not_verified",
                "Approve the legal representative's KYC first.",
                field="legal_rep",
            )
        pending_owner = kyb.beneficial_owners.exclude(kyc__status=ReviewStatus.APPROVED).exists()
        if pending_owner:
            raise AccountsError("owner_not_verified", "Approve every beneficial owner's KYC first.")
        merchant = Merchant.objects.select_for_update().get(pk=kyb.merchant_id)
        now = timezone.now()
        _status_change(kyb, to=ReviewStatus.APPROVED, actor=actor, reason=reason)
        kyb.decided_at, kyb.decided_by, kyb.decision_note = now, actor, reason
        kyb.save(update_fields=["status", "decided_at", "decided_by", "decision_note"])
        previous = merchant.status
        if merchant.status == Merchant.Status.ONBOARDING:
            merchant.status = Merchant.Status.ACTIVE
        merchant.mcc = kyb.mcc
        merchant.save(update_fields=["status", "mcc"])
        audit_record(
            action="kyb.approved",
            actor=actor,
            merchant=merchant,
            target=kyb,
            data={"reason": reason, "merchant_status": [previous, merchant.status]},
            request=request,
        )
    return kyb


def kyb_reject(
    *,
    kyb: KybApplication,
    actor: User,
    reason_code: str,
    note: str,
    may_resubmit: bool,
    request: Any = None,
) -> KybApplication:
    return _application_reject(
        kyb,
        kind="kyb",
        actor=actor,
        reason_code=reason_code,
        note=note,
        may_resubmit=may_resubmit,
        request=request,
    )


def pii_reveal_record(
    *, actor: User, target: KycApplication | KybApplication, request: Any = None
) -> None:
    """Compliance looked at clear PII: who, when, which record."""
    with transaction.atomic():
        audit_record(
            action="pii.revealed",
            actor=actor,
            merchant=getattr(target, "merchant", None),
            target=target,
            data={
                "fields": ["legal_name", "id_number", "phone", "documents"]
                if isinstance(target, KycApplication)
                else ["uscc", "documents"]
            },
            request=request,
        )

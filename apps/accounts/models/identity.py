"""Real-name verification: KYC of individuals, KYB of merchants, their
documents and the history of every status change. PII is encrypted at rest
(apps.accounts.crypto); the *_index columns are keyed blind indexes."""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.crypto import PIICharField
from apps.accounts.tenancy import TenantOwnedModel


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    SUBMITTED = "submitted", _("submitted")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")
    EXPIRED = "expired", _("expired")


class RejectionReason(models.TextChoices):
    DOCUMENT_UNREADABLE = "document_unreadable", _("a document is unreadable")
    DOCUMENT_MISMATCH = "document_mismatch", _("documents do not match the details given")
    DOCUMENT_EXPIRED = "document_expired", _("a document has expired")
    DUPLICATE_IDENTITY = "duplicate_identity", _("the identity is already registered")
    LEGAL_REP_NOT_VERIFIED = "legal_rep_not_verified", _("the legal representative is not verified")
    SUSPECTED_FRAUD = "suspected_fraud", _("suspected fraud")
    OTHER = "other", _("other")


class KycApplication(models.Model):
    """One real-name verification of an individual: a payer, a merchant's
    legal representative or beneficial owner, or a staff member. Each
    submission is its own row; a rejected one that allows it is followed by
    a new submission, so the history of every attempt stays."""

    Status = ReviewStatus

    class Subject(models.TextChoices):
        PAYER = "payer", _("payer")
        LEGAL_REP = "legal_rep", _("legal representative")
        BENEFICIAL_OWNER = "beneficial_owner", _("beneficial owner")
        STAFF = "staff", _("staff member")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    subject = models.CharField(_("subject"), max_length=20, choices=Subject.choices)
    # The account this identity belongs to (a payer's or staff member's user);
    # empty for a legal representative or owner who has no account.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="kyc_applications",
        verbose_name=_("user"),
    )
    # The merchant whose KYB names this person (legal rep, beneficial owner).
    merchant = models.ForeignKey(
        "accounts.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
    )
    legal_name = PIICharField(_("legal name"), max_length=100)
    id_number = PIICharField(_("resident ID number"), max_length=18)
    id_number_index = models.CharField(
        _("ID number index"), max_length=64, db_index=True, editable=False
    )
    phone = PIICharField(_("phone"), max_length=20, blank=True)
    phone_index = models.CharField(
        _("phone index"), max_length=64, blank=True, db_index=True, editable=False
    )
    status = models.CharField(
        _("status"), max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    # The account class compliance granted on approval (payers only).
    account_class = models.CharField(_("account class"), max_length=4, blank=True)
    rejection_reason = models.CharField(
        _("rejection reason"), max_length=30, choices=RejectionReason.choices, blank=True
    )
    decision_note = models.TextField(_("decision note"), blank=True)
    may_resubmit = models.BooleanField(_("may resubmit"), default=True)
    # Another application with the same ID number (found by blind index), for
    # compliance's eyes only: the applicant learns nothing about it.
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("duplicate of"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("KYC application")
        verbose_name_plural = _("KYC applications")
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"KYC {str(self.public_id)[:8]} ({self.get_subject_display()}, {self.status})"

    @property
    def birth_date(self) -> datetime.date | None:
        from stdnum.cn import ric

        try:
            return ric.get_birth_date(self.id_number)
        except Exception:
            return None


class KybApplication(TenantOwnedModel):
    """One business verification of a merchant: its unified social credit
    code, licence, category, registered address and legal representative
    (whose own KYC must be approved first). Approval makes the merchant
    ACTIVE; until then it cannot activate terminals or take payments."""

    Status = ReviewStatus

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    company_name = models.CharField(_("registered company name"), max_length=200)
    uscc = PIICharField(_("unified social credit code"), max_length=18)
    uscc_index = models.CharField(
        _("credit code index"), max_length=64, db_index=True, editable=False
    )
    mcc = models.CharField(_("merchant category code"), max_length=4)
    registered_address = models.CharField(_("registered address"), max_length=300)
    legal_rep = models.ForeignKey(
        KycApplication,
        on_delete=models.PROTECT,
        related_name="kyb_as_legal_rep",
        verbose_name=_("legal representative"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    rejection_reason = models.CharField(
        _("rejection reason"), max_length=30, choices=RejectionReason.choices, blank=True
    )
    decision_note = models.TextField(_("decision note"), blank=True)
    may_resubmit = models.BooleanField(_("may resubmit"), default=True)
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("duplicate of"),
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("submitted by"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("KYB application")
        verbose_name_plural = _("KYB applications")
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"KYB {self.company_name} ({self.status})"


class BeneficialOwner(TenantOwnedModel):
    """A person who ultimately owns or controls a merchant, verified by KYC."""

    kyb = models.ForeignKey(
        KybApplication, on_delete=models.CASCADE, related_name="beneficial_owners"
    )
    kyc = models.ForeignKey(KycApplication, on_delete=models.PROTECT, related_name="+")
    share_percent = models.DecimalField(_("share (%)"), max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = _("beneficial owner")
        verbose_name_plural = _("beneficial owners")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(share_percent__gt=0, share_percent__lte=100),
                name="beneficial_owner_share_range",
            ),
        ]

    def __str__(self) -> str:
        return f"owner of {self.share_percent}%"


class IdentityDocument(models.Model):
    """A document image of a KYC or KYB application, Fernet-encrypted with
    the field key and kept in the database so that it commits (or not)
    together with its application and is never served as static media."""

    class Kind(models.TextChoices):
        ID_FRONT = "id_front", _("ID card, front")
        ID_BACK = "id_back", _("ID card, back")
        BUSINESS_LICENCE = "business_licence", _("business licence")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kyc = models.ForeignKey(
        KycApplication, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    kyb = models.ForeignKey(
        KybApplication, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    ciphertext = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("identity document")
        verbose_name_plural = _("identity documents")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kyc__isnull=False, kyb__isnull=True)
                | models.Q(kyc__isnull=True, kyb__isnull=False),
                name="identity_document_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.size} bytes)"


class ReviewStatusChange(models.Model):
    """One status change of a KYC or KYB application: who, when, why."""

    kyc = models.ForeignKey(
        KycApplication, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    kyb = models.ForeignKey(
        KybApplication, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status history")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kyc__isnull=False, kyb__isnull=True)
                | models.Q(kyc__isnull=True, kyb__isnull=False),
                name="review_status_change_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status}"


class EncryptionCanary(models.Model):
    """A known value encrypted with the field key: if the configured key
    cannot read it, the key is wrong (apps.accounts.crypto.field_key_verify)."""

    token = models.TextField()

    class Meta:
        verbose_name = _("encryption canary")
        verbose_name_plural = _("encryption canaries")

    def __str__(self) -> str:
        return "encryption canary"

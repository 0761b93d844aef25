"""Real-name KYC and KYB: submission, duplicates across tenants, decisions
with reasons, history, expiry, and nothing half-saved on bad input."""

import datetime

import pytest
from django.utils import timezone

from apps.accounts.errors import AccountsError
from apps.accounts.models import (
    IdentityDocument,
    KybApplication,
    KycApplication,
    Merchant,
    Payer,
    ReviewStatusChange,
    Shop,
)
from apps.accounts.services import (
    kyb_approve,
    kyb_reject,
    kyc_approve,
    kyc_expire_due,
    kyc_reject,
    payer_kyc_submit,
)
from apps.accounts.testdata import generated_uscc
from apps.audit.models import AuditRecord
from apps.audit.services import audit_chain_verify
from tests.accounts.factories import MembershipFactory, MerchantFactory, PayerFactory
from tests.accounts.helpers import kyb_submit_for, person


@pytest.fixture
def onboarding(db):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant, MembershipFactory(merchant=merchant, role="owner").user


@pytest.fixture
def onboarding_other(db):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant, MembershipFactory(merchant=merchant, role="owner").user


def test_kyb_approval_makes_the_merchant_active_after_its_legal_rep_is_verified(
    onboarding, compliance
):
    merchant, owner = onboarding
    kyb = kyb_submit_for(merchant, owner)
    assert kyb.status == "submitted"
    assert Shop.objects.for_merchant(merchant).count() == 1
    with pytest.raises(AccountsError) as err:
        kyb_approve(kyb=kyb, actor=compliance, reason="licence checked")
    assert err.value.code == "legal_rep_not_verified"
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ONBOARDING
    kyc_approve(kyc=kyb.legal_rep, actor=compliance, reason="ID matches")
    kyb_approve(kyb=kyb, actor=compliance, reason="licence checked")
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ACTIVE
    assert list(
        ReviewStatusChange.objects.filter(kyb=kyb).values_list("from_status", "to_status")
    ) == [("draft", "submitted"), ("submitted", "approved")]
    assert AuditRecord.objects.filter(action="kyb.approved", target_id=str(kyb.public_id)).exists()


def test_a_decision_needs_a_reason(onboarding, compliance):
    merchant, owner = onboarding
    kyb = kyb_submit_for(merchant, owner)
    with pytest.raises(AccountsError) as err:
        kyc_approve(kyc=kyb.legal_rep, actor=compliance, reason="  ")
    assert err.value.code == "reason_required"
    with pytest.raises(AccountsError):
        kyb_reject(kyb=kyb, actor=compliance, reason_code="other", note="", may_resubmit=True)
    kyb.refresh_from_db()
    assert kyb.status == "submitted"


def test_the_same_id_number_at_two_merchants_is_flagged(onboarding, onboarding_other):
    (m1, o1), (m2, o2) = onboarding, onboarding_other
    first = kyb_submit_for(m1, o1, seq=1, rep_seq=42)
    second = kyb_submit_for(m2, o2, seq=2, rep_seq=42)
    assert first.legal_rep.duplicate_of is None
    assert second.legal_rep.duplicate_of == first.legal_rep
    # Found by blind index: equal indexes, never a clear-value comparison.
    assert second.legal_rep.id_number_index == first.legal_rep.id_number_index


def test_the_same_credit_code_at_two_merchants_is_flagged(onboarding, onboarding_other):
    (m1, o1), (m2, o2) = onboarding, onboarding_other
    first = kyb_submit_for(m1, o1, seq=5, rep_seq=1, uscc=generated_uscc(77))
    second = kyb_submit_for(m2, o2, seq=6, rep_seq=2, uscc=generated_uscc(77))
    assert second.duplicate_of == first


def test_the_same_id_number_for_two_payers_is_flagged(db):
    first = payer_kyc_submit(payer=PayerFactory(), person=person(9))
    second = payer_kyc_submit(payer=PayerFactory(), person=person(9))
    assert second.duplicate_of == first


def test_approving_a_payer_sets_the_account_class(db, compliance):
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    kyc = payer_kyc_submit(payer=payer, person=person(3))
    with pytest.raises(AccountsError) as err:
        kyc_approve(kyc=kyc, actor=compliance, reason="ok")
    assert err.value.code == "account_class_required"
    kyc_approve(kyc=kyc, actor=compliance, reason="ID card matches the selfie", account_class="III")
    payer.refresh_from_db()
    assert payer.account_class == "III"


def test_a_rejection_says_whether_the_applicant_may_resubmit(db, compliance):
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    kyc = payer_kyc_submit(payer=payer, person=person(3))
    with pytest.raises(AccountsError) as err:
        payer_kyc_submit(payer=payer, person=person(3))
    assert err.value.code == "kyc_pending"
    kyc_reject(
        kyc=kyc,
        actor=compliance,
        reason_code="document_unreadable",
        note="The back is blurred.",
        may_resubmit=True,
    )
    again = payer_kyc_submit(payer=payer, person=person(3))
    kyc_reject(
        kyc=again,
        actor=compliance,
        reason_code="suspected_fraud",
        note="Edited image.",
        may_resubmit=False,
    )
    with pytest.raises(AccountsError) as err:
        payer_kyc_submit(payer=payer, person=person(3))
    assert err.value.code == "kyc_rejected_final"
    assert KycApplication.objects.filter(user=payer.user).count() == 2


def test_approved_kyc_expires_and_the_payer_drops_to_unverified(db, compliance):
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    kyc = payer_kyc_submit(payer=payer, person=person(3))
    kyc_approve(kyc=kyc, actor=compliance, reason="ok", account_class="II")
    assert kyc_expire_due() == 0
    assert kyc_expire_due(now=timezone.now() + datetime.timedelta(days=3 * 365)) == 1
    kyc.refresh_from_db()
    payer.refresh_from_db()
    assert kyc.status == "expired"
    assert payer.account_class == Payer.AccountClass.UNVERIFIED


def test_a_bad_licence_image_saves_nothing(onboarding):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.validation import document_clean

    with pytest.raises(AccountsError) as err:
        document_clean(
            SimpleUploadedFile("lic.png", b"not an image at all", "image/png"), field="licence"
        )
    assert err.value.code == "document_not_image"
    assert err.value.field == "licence"


def test_an_invalid_credit_code_saves_nothing(onboarding):
    merchant, owner = onboarding
    with pytest.raises(AccountsError) as err:
        kyb_submit_for(merchant, owner, uscc="91110000600037341M")
    assert err.value.code == "invalid_uscc"
    assert not KybApplication.objects.exists()
    assert not KycApplication.objects.exists()
    assert not IdentityDocument.objects.exists()
    assert not Shop.objects.for_merchant(merchant).exists()


def test_a_failure_midway_rolls_the_whole_submission_back(onboarding, monkeypatch):
    """The legal rep's KYC and documents are written before the KYB row: an
    error after them leaves nothing behind."""
    from apps.accounts.models import BeneficialOwner

    merchant, owner = onboarding

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Shop.objects, "create", explode)
    with pytest.raises(RuntimeError):
        kyb_submit_for(merchant, owner)
    assert not KycApplication.objects.exists()
    assert not IdentityDocument.objects.exists()
    assert not KybApplication.objects.exists()
    assert not BeneficialOwner.objects.exists()


def test_every_status_change_is_in_the_audit_chain_and_an_edit_is_detected(db, compliance):
    from django.db import connection

    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    kyc = payer_kyc_submit(payer=payer, person=person(3))
    kyc_approve(kyc=kyc, actor=compliance, reason="ok", account_class="I")
    assert audit_chain_verify() == []
    record = AuditRecord.objects.get(action="kyc.approved")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditrecord DISABLE TRIGGER audit_record_append_only")
        cursor.execute(
            "UPDATE audit_auditrecord SET data = %s WHERE id = %s",
            ['{"account_class": "III"}', record.pk],
        )
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditrecord ENABLE TRIGGER audit_record_append_only")
    problems = audit_chain_verify()
    assert any(p.seq == record.seq and "altered" in p.problem for p in problems)

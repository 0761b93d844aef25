"""The KYC and KYB review queues in the admin: a decision takes the reviewer
straight to the oldest application still waiting, saying what was done, or
back to the queue once it is empty; "Review next" opens the oldest one. The
decision pages keep their rules: a reason is mandatory, the service audits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import KybApplication, KycApplication, Merchant, Payer
from apps.accounts.services import payer_kyc_submit
from apps.audit.models import AuditRecord
from tests.accounts.factories import MembershipFactory, MerchantFactory, PayerFactory
from tests.accounts.helpers import kyb_submit_for, otp_force_login, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, compliance):
    otp_force_login(client, compliance)
    return client


def _submitted_kyc(seq: int, *, hours_ago: int) -> KycApplication:
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    kyc = payer_kyc_submit(payer=payer, person=person(seq))
    KycApplication.objects.filter(pk=kyc.pk).update(
        submitted_at=timezone.now() - timedelta(hours=hours_ago)
    )
    return kyc


def _submitted_kyb(seq: int, *, hours_ago: int) -> KybApplication:
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    owner = MembershipFactory(merchant=merchant, role="owner").user
    kyb = kyb_submit_for(merchant, owner, seq=seq, rep_seq=40 + seq)
    KybApplication.objects.filter(pk=kyb.pk).update(
        submitted_at=timezone.now() - timedelta(hours=hours_ago)
    )
    return kyb


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _change(model: str, pk: int) -> str:
    return reverse(f"admin:accounts_{model}_change", args=[pk])


def _approve_kyc(client, kyc: KycApplication):
    return client.post(
        reverse("admin:accounts_kycapplication_approve", args=[kyc.pk]),
        {"reason": "ID and photo match", "account_class": "II"},
    )


def test_approving_a_kyc_opens_the_oldest_application_still_waiting(admin_client):
    newest = _submitted_kyc(1, hours_ago=1)
    oldest = _submitted_kyc(2, hours_ago=30)
    middle = _submitted_kyc(3, hours_ago=5)

    response = _approve_kyc(admin_client, middle)

    assert response.status_code == 302
    assert response["Location"] == _change("kycapplication", oldest.pk)
    [message] = _messages(response)
    assert f"KYC {str(middle.public_id)[:8]} approved." in message
    assert f"Next in the queue: KYC {str(oldest.public_id)[:8]}" in message
    middle.refresh_from_db()
    assert middle.status == KycApplication.Status.APPROVED

    response = _approve_kyc(admin_client, oldest)
    assert response["Location"] == _change("kycapplication", newest.pk)


def test_the_last_decision_goes_back_to_the_queue_saying_it_is_empty(admin_client):
    kyc = _submitted_kyc(1, hours_ago=2)
    response = admin_client.post(
        reverse("admin:accounts_kycapplication_reject", args=[kyc.pk]),
        {"reason_code": "document_unreadable", "reason": "Back side blurred"},
    )
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("admin:accounts_kycapplication_changelist") + "?status__exact=submitted"
    )
    [message] = _messages(response)
    assert "rejected" in message
    assert "The queue is empty." in message
    kyc.refresh_from_db()
    assert kyc.status == KycApplication.Status.REJECTED
    assert AuditRecord.objects.filter(action="kyc.rejected", target_id=str(kyc.public_id)).exists()


def test_a_decision_without_a_reason_stays_on_its_page_and_decides_nothing(admin_client):
    kyc = _submitted_kyc(1, hours_ago=2)
    _submitted_kyc(2, hours_ago=9)
    response = admin_client.post(
        reverse("admin:accounts_kycapplication_approve", args=[kyc.pk]),
        {"reason": "", "account_class": "II"},
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    kyc.refresh_from_db()
    assert kyc.status == KycApplication.Status.SUBMITTED
    assert not AuditRecord.objects.filter(action="kyc.approved").exists()


def test_rejecting_a_kyb_opens_the_next_kyb_and_skips_decided_ones(admin_client):
    first = _submitted_kyb(1, hours_ago=10)
    second = _submitted_kyb(2, hours_ago=8)
    decided = _submitted_kyb(3, hours_ago=20)
    KybApplication.objects.filter(pk=decided.pk).update(status=KybApplication.Status.REJECTED)

    response = admin_client.post(
        reverse("admin:accounts_kybapplication_reject", args=[first.pk]),
        {
            "reason_code": "document_unreadable",
            "reason": "Licence unreadable",
            "may_resubmit": "on",
        },
    )

    assert response["Location"] == _change("kybapplication", second.pk)
    [message] = _messages(response)
    assert "KYB 测试公司1 rejected." in message
    assert "Next in the queue: KYB 测试公司2" in message
    first.refresh_from_db()
    assert (first.status, first.may_resubmit) == (KybApplication.Status.REJECTED, True)
    assert AuditRecord.objects.filter(action="kyb.rejected", target_id=str(first.public_id))


def test_a_kyb_refused_by_its_service_shows_why_beside_the_form(admin_client):
    kyb = _submitted_kyb(1, hours_ago=3)  # its legal representative is not verified yet
    response = admin_client.post(
        reverse("admin:accounts_kybapplication_approve", args=[kyb.pk]),
        {"reason": "licence verified"},
    )
    assert response.status_code == 200
    assert "Approve the legal representative" in response.content.decode()
    kyb.refresh_from_db()
    assert kyb.status == KybApplication.Status.SUBMITTED


def test_review_next_opens_the_oldest_waiting_application(admin_client):
    _submitted_kyc(1, hours_ago=1)
    oldest = _submitted_kyc(2, hours_ago=48)
    response = admin_client.get(reverse("admin:accounts_kycapplication_next"))
    assert response["Location"] == _change("kycapplication", oldest.pk)
    assert _messages(response) == []


def test_review_next_on_an_empty_queue_says_so(admin_client):
    response = admin_client.get(reverse("admin:accounts_kybapplication_next"), follow=True)
    assert response.redirect_chain[-1][0] == (
        reverse("admin:accounts_kybapplication_changelist") + "?status__exact=submitted"
    )
    assert "The queue is empty." in response.content.decode()


def test_the_queue_and_the_dashboard_link_to_review_next(admin_client):
    _submitted_kyc(1, hours_ago=1)
    _submitted_kyb(2, hours_ago=1)
    queue = admin_client.get(reverse("admin:accounts_kycapplication_changelist"), follow=True)
    assert reverse("admin:accounts_kycapplication_next") in queue.content.decode()
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:accounts_kycapplication_next") in index
    assert reverse("admin:accounts_kybapplication_next") in index


def test_merchant_staff_cannot_use_review_next(client, owner):
    otp_force_login(client, owner)
    response = client.get(reverse("admin:accounts_kycapplication_next"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]

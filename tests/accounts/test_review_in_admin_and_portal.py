"""A compliance user approves a payer's KYC in the admin and sees the account
class change; a merchant owner submits KYB in the portal and sees it
approved. PII is masked in the admin until revealed, and each reveal is audited."""

import pytest
from django.urls import reverse

from apps.accounts.models import KybApplication, KycApplication, Merchant, Payer
from apps.accounts.services import payer_kyc_submit
from apps.accounts.testdata import generated_id_number, generated_uscc
from apps.audit.models import AuditRecord
from tests.accounts.factories import MembershipFactory, MerchantFactory, PayerFactory
from tests.accounts.helpers import otp_force_login, person, png_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, compliance):
    otp_force_login(client, compliance)
    return client


@pytest.fixture
def submitted_payer_kyc(db):
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    return payer_kyc_submit(payer=payer, person=person(21, legal_name="测试孙七"))


def test_compliance_approves_a_payers_kyc_in_the_admin_and_the_class_changes(
    admin_client, submitted_payer_kyc
):
    queue = admin_client.get(reverse("admin:accounts_kycapplication_changelist"), follow=True)
    assert str(submitted_payer_kyc.public_id)[:8] in queue.content.decode()
    url = reverse("admin:accounts_kycapplication_approve", args=[submitted_payer_kyc.pk])
    no_reason = admin_client.post(url, {"reason": "", "account_class": "II"})
    assert no_reason.status_code == 200
    assert "required" in no_reason.content.decode()
    assert (
        admin_client.post(url, {"reason": "ID and photo match", "account_class": "II"}).status_code
        == 302
    )
    payer = Payer.objects.get(user=submitted_payer_kyc.user)
    assert payer.account_class == "II"
    page = admin_client.get(
        reverse("admin:accounts_kycapplication_change", args=[submitted_payer_kyc.pk])
    ).content.decode()
    assert "ID and photo match" in page  # the history inline


def test_compliance_rejects_with_a_structured_reason(admin_client, submitted_payer_kyc):
    url = reverse("admin:accounts_kycapplication_reject", args=[submitted_payer_kyc.pk])
    admin_client.post(url, {"reason_code": "document_unreadable", "reason": "Back side blurred"})
    submitted_payer_kyc.refresh_from_db()
    assert submitted_payer_kyc.status == "rejected"
    assert submitted_payer_kyc.rejection_reason == "document_unreadable"
    assert submitted_payer_kyc.may_resubmit is False  # unticked box


def test_pii_is_masked_until_revealed_and_each_reveal_is_audited(
    admin_client, submitted_payer_kyc, compliance
):
    number = generated_id_number(21)
    change = admin_client.get(
        reverse("admin:accounts_kycapplication_change", args=[submitted_payer_kyc.pk])
    )
    body = change.content.decode()
    assert number not in body
    assert "测试孙七" not in body
    assert "****" + number[-4:] in body
    # The reveal button submits its own form, which must not sit inside the
    # change form (a nested form would post the change form instead).
    before = body[: body.index('id="reveal-form"')]
    assert before.count("<form") - 1 == before.count("</form>")
    assert "测***" in body
    reveal_url = reverse("admin:accounts_kycapplication_reveal", args=[submitted_payer_kyc.pk])
    assert admin_client.get(reveal_url).status_code == 302  # only an explicit POST reveals
    assert not AuditRecord.objects.filter(action="pii.revealed").exists()
    revealed = admin_client.post(reveal_url)
    assert number in revealed.content.decode()
    assert "测试孙七" in revealed.content.decode()
    assert "data:image/png;base64," in revealed.content.decode()
    assert "no-store" in revealed["Cache-Control"]
    record = AuditRecord.objects.get(action="pii.revealed")
    assert record.actor_id == str(compliance.public_id)
    assert record.target_id == str(submitted_payer_kyc.public_id)


def test_merchant_staff_cannot_reach_the_review_admin(client, owner, submitted_payer_kyc):
    otp_force_login(client, owner)
    response = client.get(
        reverse("admin:accounts_kycapplication_change", args=[submitted_payer_kyc.pk])
    )
    assert response.status_code == 302


def _kyb_form(seq=1, **overrides):
    data = {
        "company_name": "测试青柠有限公司",
        "uscc": generated_uscc(seq),
        "mcc": "5814",
        "registered_address": "北京市东城区测试路8号",
        "licence": png_upload("lic.png"),
        "legal_rep_legal_name": "测试周八",
        "legal_rep_id_number": generated_id_number(30 + seq),
        "legal_rep_phone": "19900001234",
        "legal_rep_id_front": png_upload("f.png"),
        "legal_rep_id_back": png_upload("b.png"),
        "legal_rep_is_me": "on",
        "shop_name": "测试国贸店",
        "shop_address": "北京市朝阳区测试路1号",
        "shop_latitude": "39.908700",
        "shop_longitude": "116.459600",
        "shop_opens_at": "08:00",
        "shop_closes_at": "22:00",
    }
    data.update(overrides)
    return data


@pytest.fixture
def new_merchant(db):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    return merchant, MembershipFactory(merchant=merchant, role="owner").user


def test_an_owner_submits_kyb_in_the_portal_and_sees_it_approved(client, new_merchant, compliance):
    merchant, owner = new_merchant
    otp_force_login(client, owner)
    assert client.post(reverse("portal:kyb"), _kyb_form()).status_code == 302
    page = client.get(reverse("portal:kyb")).content.decode()
    assert "status-submitted" in page
    kyb = KybApplication.objects.get(merchant=merchant)
    assert kyb.legal_rep.user == owner
    # Compliance decides in the admin: the legal representative first, then the business.
    staff = client.__class__()
    otp_force_login(staff, compliance)
    staff.post(
        reverse("admin:accounts_kycapplication_approve", args=[kyb.legal_rep.pk]),
        {"reason": "ID verified"},
    )
    staff.post(
        reverse("admin:accounts_kybapplication_approve", args=[kyb.pk]),
        {"reason": "licence verified"},
    )
    page = client.get(reverse("portal:kyb")).content.decode()
    assert "status-approved" in page
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ACTIVE


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"legal_rep_id_number": "110101199003070055"}, "legal_rep_id_number", "check digit"),
        ({"uscc": "91110000600037341M"}, "uscc", "check character"),
        ({"licence": None}, "licence", "required"),
        ({"legal_rep_id_front": "text"}, "legal_rep_id_front", "JPEG or PNG"),
        ({"company_name": ""}, "company_name", "required"),
        ({"shop_latitude": "95"}, "shop_latitude", "90"),
    ],
)
def test_bad_kyb_input_shows_beside_its_field_and_saves_nothing(
    client, new_merchant, overrides, field, words
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _merchant, owner = new_merchant
    otp_force_login(client, owner)
    data = _kyb_form()
    for key, value in overrides.items():
        if value is None:
            data.pop(key)
        elif value == "text":
            data[key] = SimpleUploadedFile("x.png", b"plain text, not a picture", "image/png")
        else:
            data[key] = value
    response = client.post(reverse("portal:kyb"), data, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not KybApplication.objects.exists()
    assert not KycApplication.objects.exists()


def test_a_too_large_image_is_refused(client, new_merchant, settings):
    settings.KYC_DOCUMENT_MAX_BYTES = 100
    _merchant, owner = new_merchant
    otp_force_login(client, owner)
    response = client.post(reverse("portal:kyb"), _kyb_form())
    assert "larger than" in " ".join(response.context["form"].errors["licence"])
    assert not KybApplication.objects.exists()


def test_a_cashier_cannot_open_the_kyb_page(client, merchant, cashier):
    otp_force_login(client, cashier)
    assert client.get(reverse("portal:kyb")).status_code == 403


def test_signing_up_creates_an_onboarding_merchant_and_goes_to_otp_setup(client, db):
    response = client.post(
        reverse("portal:signup"),
        {
            "merchant_name": "测试新店",
            "display_name": "测试店主",
            "email": "founder@example.test",
            "password": "a-long-enough-passphrase-9",
            "password_again": "a-long-enough-passphrase-9",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login-otp-enrol")
    merchant = Merchant.objects.get(name="测试新店")
    assert merchant.status == Merchant.Status.ONBOARDING


def test_an_invited_colleague_joins_with_the_role_given(client, merchant, owner):
    from apps.accounts.models import Membership, StaffInvitation

    otp_force_login(client, owner)
    response = client.post(
        reverse("portal:staff-invite"), {"email": "new.cashier@example.test", "role": "cashier"}
    )
    link = response.context["link"]
    invitation = StaffInvitation.objects.get(email="new.cashier@example.test")
    assert link.split("/")[-2] not in invitation.token_hash  # only the hash is stored
    client.logout()
    accepted = client.post(
        link, {"display_name": "测试收银", "password": "another-long-passphrase-7"}
    )
    assert accepted.status_code == 302
    membership = Membership.objects.get(user__email="new.cashier@example.test")
    assert membership.merchant == merchant
    assert membership.role == "cashier"
    assert client.get(link).status_code == 404  # used

"""The payer's wallet API over real HTTP requests through the test client:
register, token login, KYC with documents, OTP, payment password, payment codes."""

import hashlib

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import ApiToken, KycApplication, Payer, PaymentPassword
from apps.accounts.services import api_token_issue, kyc_approve
from apps.accounts.testdata import generated_id_number
from tests.accounts.factories import TEST_PASSWORD, PayerFactory
from tests.accounts.helpers import otp_code, otp_device, png_upload

pytestmark = pytest.mark.django_db

BASE = "/api/v1/wallet"


class Wallet:
    def __init__(self, client, token=""):
        self.client, self.token = client, token

    def _headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def post(self, path, data=None, multipart=False):
        if multipart:
            return self.client.post(f"{BASE}/{path}", data or {}, headers=self._headers())
        return self.client.post(
            f"{BASE}/{path}", data or {}, content_type="application/json", headers=self._headers()
        )

    def put(self, path, data):
        return self.client.put(
            f"{BASE}/{path}", data, content_type="application/json", headers=self._headers()
        )

    def get(self, path):
        return self.client.get(f"{BASE}/{path}", headers=self._headers())


@pytest.fixture
def wallet(client):
    response = Wallet(client).post(
        "register", {"email": "payer@example.test", "password": "a-long-wallet-passphrase-1"}
    )
    assert response.status_code == 201, response.content
    return Wallet(client, response.json()["token"])


def _kyc_form(**overrides):
    data = {
        "legal_name": "测试吴九",
        "id_number": generated_id_number(55),
        "phone": "19900005555",
        "id_front": png_upload("front.png"),
        "id_back": png_upload("back.png"),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_tokens_are_stored_only_as_hashes(wallet):
    record = ApiToken.objects.get()
    assert record.key_hash == hashlib.sha256(wallet.token.encode()).hexdigest()
    assert wallet.token not in f"{record.key_hash}{record.prefix}"


def test_a_payer_registers_submits_kyc_and_sees_the_status(wallet, compliance):
    status = wallet.get("status").json()
    assert status["account_class"] == "none"
    assert status["kyc"] == {"status": "none"}
    response = wallet.post("kyc", _kyc_form(), multipart=True)
    assert response.status_code == 201, response.content
    assert wallet.get("kyc").json()["status"] == "submitted"
    kyc_approve(kyc=KycApplication.objects.get(), actor=compliance, reason="ok", account_class="II")
    status = wallet.get("status").json()
    assert status["account_class"] == "II"
    assert status["kyc"]["status"] == "approved"


@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"id_number": "110101199003070055"}, "invalid_id_number", "id_number"),
        ({"id_number": None}, "invalid_request", "id_number"),
        ({"phone": "12345"}, "invalid_phone", "phone"),
        ({"id_back": None}, "invalid_request", "id_back"),
        ({"id_front": "text"}, "document_not_image", "id_front"),
    ],
)
def test_bad_kyc_input_gets_a_specific_error_and_saves_nothing(wallet, overrides, code, param):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if overrides.get("id_front") == "text":
        overrides["id_front"] = SimpleUploadedFile(
            "front.png", b"GIF89a... no, just text", "image/png"
        )
    response = wallet.post("kyc", _kyc_form(**overrides), multipart=True)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["request_id"]
    assert not KycApplication.objects.exists()


def test_an_image_over_the_limit_is_refused(wallet, settings):
    settings.KYC_DOCUMENT_MAX_BYTES = 50
    response = wallet.post("kyc", _kyc_form(), multipart=True)
    assert response.json()["error"]["code"] == "document_too_large"


def test_otp_enrolment_then_the_payment_password_needs_a_fresh_code(wallet):
    assert (
        wallet.put("payment-password", {"password": "839274", "otp_token": "123456"}).json()[
            "error"
        ]["code"]
        == "otp_not_enrolled"
    )
    enrol = wallet.post("otp/enrol")
    assert enrol.status_code == 201
    assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert enrol.json()["qr_svg"].startswith("<svg")
    device = TOTPDevice.objects.get(confirmed=False)
    confirmed = wallet.post("otp/confirm", {"otp_token": otp_code(device)})
    assert confirmed.status_code == 200
    assert len(confirmed.json()["backup_codes"]) == 10
    wrong = wallet.put(
        "payment-password",
        {"password": "839274", "otp_token": "000000" if otp_code(device) != "000000" else "000001"},
    )
    assert wrong.json()["error"]["code"] == "otp_invalid"
    weak = wallet.put("payment-password", {"password": "111111", "otp_token": otp_code(device)})
    assert weak.json()["error"] == {
        **weak.json()["error"],
        "code": "pin_repeated",
        "param": "password",
    }
    ok = wallet.put("payment-password", {"password": "839274", "otp_token": otp_code(device)})
    assert ok.status_code == 200
    assert PaymentPassword.objects.count() == 1
    assert wallet.get("status").json()["payment_password_set"] is True


def test_login_needs_the_otp_code_once_enrolled(client, db):
    payer = PayerFactory()
    anonymous = Wallet(client)
    assert (
        anonymous.post("login", {"email": payer.user.email, "password": "wrong-password-1"}).json()[
            "error"
        ]["code"]
        == "invalid_credentials"
    )
    assert (
        anonymous.post("login", {"email": payer.user.email, "password": TEST_PASSWORD}).status_code
        == 200
    )
    device = otp_device(payer.user)
    missing = anonymous.post("login", {"email": payer.user.email, "password": TEST_PASSWORD})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "otp_required"
    ok = anonymous.post(
        "login",
        {"email": payer.user.email, "password": TEST_PASSWORD, "otp_token": otp_code(device)},
    )
    assert ok.status_code == 200
    assert ok.json()["token"]


def test_a_revoked_or_unknown_token_is_refused(wallet):
    assert wallet.post("logout").status_code == 204
    response = wallet.get("status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert Wallet(wallet.client, "anfu_made-up").get("status").status_code == 401


def test_staff_without_a_wallet_are_refused(client, owner):
    _record, token = api_token_issue(user=owner)
    assert Wallet(client, token).get("status").status_code == 403


def test_an_unverified_payer_gets_no_payment_code(wallet):
    response = wallet.post("payment-codes")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "kyc_required"


def test_a_verified_payer_gets_a_single_use_payment_code(client, db):
    payer = PayerFactory(account_class=Payer.AccountClass.CLASS_II)
    _record, token = api_token_issue(user=payer.user)
    response = Wallet(client, token).post("payment-codes")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"].isdigit()
    assert body["expires_at"]
    second = Wallet(client, token).post("payment-codes").json()
    assert second["code"] != body["code"]

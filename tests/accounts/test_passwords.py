"""The three passwords: weak 6-digit secrets refused with the rule they
break, the payment password's pepper and lockout, the operator PIN's
verifier and lockout, and the login lockout."""

import datetime

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.accounts.errors import AccountsError, PaymentPasswordLocked, PaymentPasswordNotSet
from apps.accounts.models import OperatorPin, PaymentPassword, User
from apps.accounts.pins import pin_verifier_check, pin_weakness
from apps.accounts.services import (
    kyc_approve,
    login_unlock,
    operator_pin_set,
    operator_pin_verify,
    payer_kyc_submit,
    payment_password_set,
    payment_password_unlock,
    payment_password_verify,
)
from apps.accounts.testdata import generated_id_number, generated_phone
from apps.audit.models import SecurityEvent
from tests.accounts.factories import TEST_PASSWORD, MembershipFactory, PayerFactory, UserFactory
from tests.accounts.helpers import otp_code, otp_device, person

BIRTH = datetime.date(1990, 3, 7)
ID_NUMBER = generated_id_number(12, birth_date=BIRTH)
PHONE = generated_phone(4321)


@pytest.mark.parametrize(
    ("pin", "code", "words"),
    [
        ("12345", "pin_format", "exactly 6 digits"),
        ("12a456", "pin_format", "exactly 6 digits"),
        ("１２３４５６", "pin_format", "exactly 6 digits"),  # full-width digits
        ("111111", "pin_repeated", "repeat one digit"),
        ("123456", "pin_sequential", "consecutive"),
        ("654321", "pin_sequential", "consecutive"),
        ("890123", "pin_sequential", "consecutive"),
        ("121212", "pin_pattern", "too simple"),
        ("385385", "pin_pattern", "too simple"),
        ("900307", "pin_birth_date", "birth date"),  # YYMMDD
        ("030790", "pin_birth_date", "birth date"),  # MMDDYY
        (ID_NUMBER[-6:], "pin_id_fragment", "ID number"),
        (PHONE[-6:], "pin_phone_fragment", "phone"),
    ],
)
def test_weak_pins_are_refused_with_a_specific_message(pin, code, words):
    weakness = pin_weakness(pin, birth_date=BIRTH, id_number=ID_NUMBER, phone=PHONE)
    assert weakness is not None
    assert weakness[0] == code
    assert words in weakness[1]


def test_a_pin_without_weakness_is_accepted():
    assert pin_weakness("839274", birth_date=BIRTH, id_number=ID_NUMBER, phone=PHONE) is None


@pytest.fixture
def verified_payer(db, compliance):
    payer = PayerFactory()
    kyc = payer_kyc_submit(payer=payer, person=person(12, id_number=ID_NUMBER, phone=PHONE))
    kyc_approve(kyc=kyc, actor=compliance, reason="documents match", account_class="II")
    return payer


def test_payment_password_refuses_the_payers_own_birth_date_and_id_fragment(verified_payer):
    for pin, code in (
        ("900307", "pin_birth_date"),
        (ID_NUMBER[-6:], "pin_id_fragment"),
        (PHONE[-6:], "pin_phone_fragment"),
    ):
        with pytest.raises(AccountsError) as err:
            payment_password_set(payer=verified_payer, password=pin, otp_verified=True)
        assert err.value.code == code
    assert not PaymentPassword.objects.filter(payer=verified_payer).exists()


def test_payment_password_needs_a_fresh_otp(verified_payer):
    with pytest.raises(AccountsError) as err:
        payment_password_set(payer=verified_payer, password="839274", otp_verified=False)
    assert err.value.code == "otp_required"
    device = otp_device(verified_payer.user)
    with pytest.raises(AccountsError) as err:
        payment_password_set(
            payer=verified_payer,
            password="839274",
            otp_token="000000" if otp_code(device) != "000000" else "111111",
        )
    assert err.value.code == "otp_invalid"
    payment_password_set(payer=verified_payer, password="839274", otp_token=otp_code(device))
    assert payment_password_verify(payer=verified_payer, password="839274")


def test_the_payment_password_is_peppered_not_stored_in_clear(verified_payer, settings):
    record = payment_password_set(payer=verified_payer, password="839274", otp_verified=True)
    assert "839274" not in f"{record.salt}{record.digest}"
    # Without the right pepper the same password no longer verifies.
    settings.PAYMENT_PIN_PEPPER = "another-pepper"
    assert payment_password_verify(payer=verified_payer, password="839274") is False


def test_payment_password_locks_after_five_wrong_attempts(verified_payer):
    payment_password_set(payer=verified_payer, password="839274", otp_verified=True)
    results = [payment_password_verify(payer=verified_payer, password="000001") for _ in range(5)]
    assert results == [False] * 5
    # Locked: even the right password is refused, with a clear state.
    with pytest.raises(PaymentPasswordLocked) as err:
        payment_password_verify(payer=verified_payer, password="839274")
    assert err.value.code == "payment_password_locked"
    assert err.value.until > timezone.now()
    assert SecurityEvent.objects.filter(kind="payment_password_lockout").count() == 1


def test_four_wrong_attempts_then_the_right_one_resets_the_count(verified_payer):
    payment_password_set(payer=verified_payer, password="839274", otp_verified=True)
    for _ in range(4):
        assert not payment_password_verify(payer=verified_payer, password="000001")
    assert payment_password_verify(payer=verified_payer, password="839274")
    assert PaymentPassword.objects.get(payer=verified_payer).failed_attempts == 0


def test_the_payment_lock_ends_by_time_or_by_compliance(verified_payer, compliance):
    payment_password_set(payer=verified_payer, password="839274", otp_verified=True)
    for _ in range(5):
        payment_password_verify(payer=verified_payer, password="000001")
    PaymentPassword.objects.filter(payer=verified_payer).update(
        locked_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert payment_password_verify(payer=verified_payer, password="839274")
    for _ in range(5):
        payment_password_verify(payer=verified_payer, password="000001")
    with pytest.raises(AccountsError, match="reason"):
        payment_password_unlock(payer=verified_payer, actor=compliance, reason=" ")
    payment_password_unlock(
        payer=verified_payer, actor=compliance, reason="identity re-checked by phone"
    )
    assert payment_password_verify(payer=verified_payer, password="839274")


def test_verifying_without_a_payment_password_says_so(db):
    with pytest.raises(PaymentPasswordNotSet):
        payment_password_verify(payer=PayerFactory(), password="839274")


# --- operator PIN ---------------------------------------------------------------------


@pytest.fixture
def cashier_membership(merchant):
    return MembershipFactory(merchant=merchant, role="cashier")


def test_operator_pin_is_stored_as_the_verifier_terminals_check(cashier_membership):
    record = operator_pin_set(
        membership=cashier_membership, pin="583920", actor=cashier_membership.user
    )
    assert record.merchant_id == cashier_membership.merchant_id
    assert "583920" not in record.verifier
    assert pin_verifier_check(
        "583920", salt_b64=record.salt, iterations=record.iterations, verifier_b64=record.verifier
    )
    assert not pin_verifier_check(
        "583921", salt_b64=record.salt, iterations=record.iterations, verifier_b64=record.verifier
    )
    assert operator_pin_verify(membership=cashier_membership, pin="583920")


@pytest.mark.parametrize(
    ("pin", "code"),
    [("000000", "pin_repeated"), ("234567", "pin_sequential"), ("12", "pin_format")],
)
def test_operator_pin_refuses_weak_pins(cashier_membership, pin, code):
    with pytest.raises(AccountsError) as err:
        operator_pin_set(membership=cashier_membership, pin=pin, actor=cashier_membership.user)
    assert err.value.code == code
    assert err.value.field == "pin"
    assert not OperatorPin.objects.filter(membership=cashier_membership).exists()


def test_operator_pin_locks_after_five_wrong_attempts(cashier_membership):
    from apps.accounts.services import operator_pin_is_locked

    operator_pin_set(membership=cashier_membership, pin="583920", actor=cashier_membership.user)
    assert [operator_pin_verify(membership=cashier_membership, pin="111112") for _ in range(5)] == [
        False
    ] * 5
    assert operator_pin_is_locked(cashier_membership)
    assert operator_pin_verify(membership=cashier_membership, pin="583920") is False
    assert SecurityEvent.objects.filter(kind="operator_pin_lockout").exists()


# --- login lockout -------------------------------------------------------------------


def _portal_login(client, email, password):
    return client.post(reverse("portal:login"), {"username": email, "password": password})


@override_settings(RATE_LIMIT_ENABLED=False)
def test_ten_failed_logins_lock_the_account_for_thirty_minutes(client, owner):
    for _ in range(9):
        assert _portal_login(client, owner.email, "wrong-password-123").status_code == 200
    assert not SecurityEvent.objects.filter(kind="login_lockout").exists()
    response = _portal_login(client, owner.email, "wrong-password-123")
    assert "locked" in response.content.decode()
    owner.refresh_from_db()
    assert owner.login_locked_until >= timezone.now() + datetime.timedelta(minutes=29)
    assert SecurityEvent.objects.filter(kind="login_lockout").count() == 1
    # The right password is refused while locked, with the locked message.
    response = _portal_login(client, owner.email, TEST_PASSWORD)
    assert response.status_code == 200
    assert "locked" in response.content.decode()
    assert "otp_pending_user" not in client.session


@override_settings(RATE_LIMIT_ENABLED=False)
def test_a_lock_ends_after_its_time_or_when_compliance_lifts_it(client, owner, compliance):
    User.objects.filter(pk=owner.pk).update(
        login_locked_until=timezone.now() + datetime.timedelta(minutes=30)
    )
    assert "locked" in _portal_login(client, owner.email, TEST_PASSWORD).content.decode()
    login_unlock(user=owner, actor=compliance)
    assert _portal_login(client, owner.email, TEST_PASSWORD).status_code == 302


def test_the_wallet_login_has_the_same_lockout(client, db):
    payer = PayerFactory()
    User.objects.filter(pk=payer.user.pk).update(
        login_locked_until=timezone.now() + datetime.timedelta(minutes=30)
    )
    response = client.post(
        "/api/v1/wallet/login",
        {"email": payer.user.email, "password": TEST_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 423
    assert response.json()["error"]["code"] == "login_locked"


def test_staff_passwords_need_twelve_characters(db):
    from apps.accounts.services import merchant_signup

    with pytest.raises(AccountsError) as err:
        merchant_signup(merchant_name="测试店", email="new@example.test", password="Short1!pw")
    assert err.value.code == "weak_password"
    assert "12" in err.value.message
    assert not User.objects.filter(email="new@example.test").exists()


def test_user_factory_still_logs_in(db):
    user = UserFactory()
    assert user.check_password(TEST_PASSWORD)

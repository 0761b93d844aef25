"""OTP where stated: every portal and admin sign-in of staff, step-up for
sensitive portal actions, enrolment with a QR code and backup codes."""

import re
import time

import pytest
from django.test import override_settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import OperatorPin
from apps.accounts.stepup import STEP_UP_SESSION_KEY
from apps.audit.models import SecurityEvent
from tests.accounts.factories import TEST_PASSWORD
from tests.accounts.helpers import otp_code, otp_device, otp_force_login

pytestmark = pytest.mark.django_db


def _password_step(client, user, **extra):
    return client.post(
        reverse("portal:login"), {"username": user.email, "password": TEST_PASSWORD, **extra}
    )


def _signed_in(client):
    return client.get(reverse("portal:home")).status_code == 200


def test_a_right_password_alone_does_not_sign_staff_in(client, owner):
    otp_device(owner)
    response = _password_step(client, owner)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login-otp")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("portal:home")).status_code == 302  # to the login page


@override_settings(OTP_TOTP_THROTTLE_FACTOR=0)
def test_the_second_step_needs_the_current_code(client, owner):
    device = otp_device(owner)
    _password_step(client, owner)
    wrong = client.post(
        reverse("portal:login-otp"),
        {"otp_token": "000000" if otp_code(device) != "000000" else "000001"},
    )
    assert wrong.status_code == 400
    assert "wrong or expired" in wrong.content.decode()
    assert SecurityEvent.objects.filter(kind="otp_failed").exists()
    assert not _signed_in(client)
    empty = client.post(reverse("portal:login-otp"), {"otp_token": ""})
    assert "required" in empty.content.decode()
    right = client.post(reverse("portal:login-otp"), {"otp_token": otp_code(device)})
    assert right.status_code == 302
    assert _signed_in(client)
    assert client.session[STEP_UP_SESSION_KEY] >= int(time.time()) - 5


def test_a_first_sign_in_sets_up_an_authenticator_with_a_qr_code(client, owner):
    response = _password_step(client, owner)
    assert response["Location"] == reverse("portal:login-otp-enrol")
    page = client.get(reverse("portal:login-otp-enrol"))
    body = page.content.decode()
    assert "<svg" in body
    assert not re.search(r"<script(?![^>]*\bsrc=)", body)  # no inline script (strict CSP)
    assert "style=" not in body
    device = TOTPDevice.objects.get(user=owner, confirmed=False)
    assert not _signed_in(client)
    done = client.post(reverse("portal:login-otp-enrol"), {"otp_token": otp_code(device)})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10
    assert _signed_in(client)
    device.refresh_from_db()
    assert device.confirmed


def test_a_backup_code_signs_in_once(client, owner):
    device = otp_device(owner)
    from apps.accounts.services import otp_backup_codes_regenerate

    code = otp_backup_codes_regenerate(user=owner)[0]
    _password_step(client, owner)
    assert client.post(reverse("portal:login-otp"), {"otp_token": code}).status_code == 302
    assert not StaticToken.objects.filter(token=code).exists()
    client.logout()
    _password_step(client, owner)
    assert client.post(reverse("portal:login-otp"), {"otp_token": code}).status_code == 400
    del device


def test_the_half_signed_in_state_expires(client, owner):
    device = otp_device(owner)
    _password_step(client, owner)
    session = client.session
    session["otp_pending_at"] = int(time.time()) - 600
    session.save()
    response = client.post(reverse("portal:login-otp"), {"otp_token": otp_code(device)})
    assert response["Location"] == reverse("portal:login")
    assert not _signed_in(client)


def test_the_admin_requires_an_otp_verified_session(client, compliance):
    client.force_login(compliance)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    otp_force_login(client, compliance)
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_form_asks_for_the_code(client, compliance):
    device = otp_device(compliance)
    without = client.post(
        "/admin/login/", {"username": compliance.email, "password": TEST_PASSWORD}
    )
    assert without.status_code == 200
    assert client.get("/admin/").status_code == 302
    with_code = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": compliance.email,
            "password": TEST_PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": otp_code(device),
        },
    )
    assert with_code.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_setting_a_cashier_pin_needs_a_fresh_step_up(client, merchant, cashier):
    device = otp_force_login(client, cashier, step_up=False)
    url = reverse("portal:operator-pin")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:otp-step-up')}?next={url.replace('/', '%2F')}"
    confirmed = client.post(
        f"{reverse('portal:otp-step-up')}?next={url}", {"otp_token": otp_code(device)}
    )
    assert confirmed["Location"] == url
    assert client.get(url).status_code == 200
    weak = client.post(url, {"pin": "123456", "pin_again": "123456"})
    assert weak.status_code == 400
    assert "consecutive" in weak.content.decode()
    assert client.post(url, {"pin": "583920", "pin_again": "583920"}).status_code == 302
    assert OperatorPin.objects.filter(membership__user=cashier).exists()


def test_a_step_up_goes_stale_after_five_minutes(client, merchant, cashier):
    otp_force_login(client, cashier)
    session = client.session
    session[STEP_UP_SESSION_KEY] = int(time.time()) - 301
    session.save()
    assert client.get(reverse("portal:operator-pin")).status_code == 302


def test_a_step_up_without_an_authenticator_goes_to_enrolment(client, merchant, cashier):
    client.force_login(cashier)
    response = client.get(reverse("portal:operator-pin"))
    assert response["Location"].startswith(reverse("portal:otp-enrol"))


def test_the_step_up_page_refuses_an_outside_next_url(client, cashier):
    device = otp_force_login(client, cashier, step_up=False)
    response = client.post(
        f"{reverse('portal:otp-step-up')}?next=https://evil.example/",
        {"otp_token": otp_code(device)},
    )
    assert response["Location"] == reverse("portal:home")


def test_stepup_is_fresh_reports_the_session_state(rf, cashier):
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts.stepup import stepup_is_fresh, stepup_mark

    request = rf.get("/")
    request.user = cashier
    request.session = SessionStore()
    assert not stepup_is_fresh(request)
    stepup_mark(request)
    assert stepup_is_fresh(request)


def test_compliance_staff_land_in_the_admin_after_the_two_steps(client, compliance):
    device = otp_device(compliance)
    _password_step(client, compliance)
    response = client.post(reverse("portal:login-otp"), {"otp_token": otp_code(device)})
    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


@override_settings(RATE_LIMIT_ENABLED=False, OTP_TOTP_THROTTLE_FACTOR=0)
def test_wrong_codes_count_towards_the_login_lockout(client, owner):
    device = otp_device(owner)
    wrong = "000000" if otp_code(device) != "000000" else "000001"
    for _ in range(10):
        _password_step(client, owner)
        client.post(reverse("portal:login-otp"), {"otp_token": wrong})
    owner.refresh_from_db()
    assert owner.login_locked_until is not None
    _password_step(client, owner)
    assert "_auth_user_id" not in client.session

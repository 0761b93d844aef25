"""The whole merchant journey in a real browser (Debian's chromium, headless)
against the live server, once in Chinese and once in English:

a new merchant signs up, enrols OTP and submits KYB; compliance signs in to
the admin with OTP, sees the application on its dashboard and approves it;
the owner registers a terminal (OTP step-up) and activates it with the
terminal simulator; payments the simulator makes appear on the dashboard
and in the transactions list; the owner refunds one with OTP; a cashier
signs in and is refused the refund and staff pages.

The expected texts are the catalogue's translations of the English source
strings, so the test fails when a page shows the wrong language. Screenshots
of the key pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import KybApplication, Merchant, User
from apps.accounts.stepup import STEP_UP_SESSION_KEY
from apps.accounts.testdata import (
    generated_id_number,
    generated_phone,
    generated_png,
    generated_uscc,
)
from apps.terminals.client import TerminalClient
from apps.transactions.models import Payment, Refund
from tests.accounts.factories import TEST_PASSWORD, UserFactory
from tests.accounts.helpers import otp_code, otp_device
from tests.transactions.factories import funded_payer
from tests.transactions.pos import pay, risk_exempt, staff_with_pin

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-portal-password-2026"


def _t(text: str, lang: str) -> str:
    with translation.override(lang):
        return translation.gettext(text)


def _submit(page) -> None:
    """Submits the page's form; a destructive one asks first (portal.js's
    dialog), which is confirmed."""
    with page.expect_navigation():
        page.locator("main form[method=post] button:not([type=button])").last.click()
        asked = page.locator("dialog.confirm[open]")
        if asked.count():
            asked.locator("button[value=ok]").click()


def _confirm_otp_if_asked(page, device: TOTPDevice) -> bool:
    if page.locator("#id_otp_token").count() == 0:
        return False
    page.fill("#id_otp_token", otp_code(device))
    _submit(page)
    return True


def _expire_step_up(page) -> None:
    """Ages the session's last OTP confirmation past OTP_STEP_UP_SECONDS (as
    if the owner had been away for a while)."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[STEP_UP_SESSION_KEY] = int(time.time()) - 3600
    session.save()


@pytest.fixture
def compliance_officer(transactional_db):
    user = UserFactory(is_staff=True, is_superuser=True, email="officer@anfu.test")
    return user, otp_device(user)


@pytest.mark.parametrize(("locale", "lang"), [("zh-CN", "zh-hans"), ("en-US", "en")])
def test_a_merchant_signs_up_is_approved_takes_payments_and_refunds_and_a_cashier_is_kept_out(
    live_server, page_for, screenshot, compliance_officer, tmp_path, locale, lang
):
    base = live_server.url
    email = f"owner-{lang}@shop.test"

    # --- sign up, enrol OTP -------------------------------------------------
    owner_page = page_for(locale)
    owner_page.goto(f"{base}/signup/")
    assert owner_page.locator("h1").inner_text() == _t("Open a merchant account", lang)
    owner_page.fill("#id_merchant_name", "青柠咖啡")
    owner_page.fill("#id_display_name", "李店长")
    owner_page.fill("#id_email", email)
    owner_page.fill("#id_password", PASSWORD)
    owner_page.fill("#id_password_again", PASSWORD)
    screenshot(owner_page, f"01-signup-{lang}")
    _submit(owner_page)

    owner = User.objects.get(email=email)
    device = TOTPDevice.objects.get(user=owner)
    assert owner_page.locator("h1").inner_text() == _t("Set up two-step sign-in", lang)
    screenshot(owner_page, f"02-otp-enrol-{lang}")
    owner_page.fill("#id_otp_token", otp_code(device))
    _submit(owner_page)
    assert owner_page.locator("h1").inner_text() == _t("Your backup codes", lang)
    with owner_page.expect_navigation():
        owner_page.locator("main a.button").click()

    # --- KYB ---------------------------------------------------------------
    assert owner_page.locator("h1").inner_text() == _t("Business verification (KYB)", lang)
    png = tmp_path / "doc.png"
    png.write_bytes(generated_png())
    fields = {
        "company_name": "青柠咖啡（上海）有限公司",
        "uscc": generated_uscc(7),
        "mcc": "5814",
        "registered_address": "上海市黄浦区南京东路1号",
        "legal_rep_legal_name": "李明",
        "legal_rep_id_number": generated_id_number(7),
        "legal_rep_phone": generated_phone(7),
        "shop_name": "南京东路店",
        "shop_address": "上海市黄浦区南京东路1号",
        "shop_latitude": "31.230400",
        "shop_longitude": "121.473700",
        "shop_opens_at": "00:00",
        "shop_closes_at": "23:59",
    }
    for name, value in fields.items():
        owner_page.fill(f"#id_{name}", value)
    for name in ("licence", "legal_rep_id_front", "legal_rep_id_back"):
        owner_page.set_input_files(f"#id_{name}", str(png))
    _submit(owner_page)
    kyb = KybApplication.objects.get(merchant=owner.memberships.get().merchant)
    assert kyb.status == "submitted"
    assert _t("Compliance is reviewing your application.", lang) in owner_page.inner_text("main")
    screenshot(owner_page, f"03-kyb-submitted-{lang}")

    # --- compliance approves in the admin, with OTP ---------------------------
    officer, officer_device = compliance_officer
    admin = page_for(locale)
    admin.goto(f"{base}/admin/")
    for _attempt in range(2):
        # django-otp lists the user's devices once the password is known:
        # the first answer asks to pick one, the second signs in.
        admin.fill("#id_username", officer.email)
        admin.fill("#id_password", TEST_PASSWORD)
        if admin.locator("#id_otp_device option").count() > 1:
            admin.select_option("#id_otp_device", index=1)
        admin.fill("#id_otp_token", otp_code(officer_device))
        with admin.expect_navigation():
            admin.locator("input[type=submit]").first.click()
        if admin.locator("#tile-kyb").count():
            break
    assert admin.locator("#tile-kyb strong").inner_text() == "1"
    assert kyb.company_name in admin.inner_text("#content-main")
    screenshot(admin, f"04-compliance-dashboard-{lang}")
    for model, pk in (("kycapplication", kyb.legal_rep_id), ("kybapplication", kyb.pk)):
        admin.goto(f"{base}/admin/accounts/{model}/{pk}/approve/")
        admin.fill("#id_reason", "证件与信息一致 / documents match")
        with admin.expect_navigation():
            admin.locator("input[type=submit]").click()
    assert Merchant.objects.get(pk=kyb.merchant_id).status == Merchant.Status.ACTIVE

    # --- the owner registers a terminal (OTP step-up) and activates it --------
    _expire_step_up(owner_page)
    owner_page.goto(f"{base}/terminals/register/")
    assert _confirm_otp_if_asked(owner_page, device), "registering a terminal must ask for OTP"
    owner_page.select_option("#id_shop", index=1)
    owner_page.fill("#id_serial_number", f"POS-{lang}")
    owner_page.fill("#id_model", "P2")
    _submit(owner_page)
    code = owner_page.locator(".activation-code strong").inner_text().strip()
    screenshot(owner_page, f"05-activation-code-{lang}")
    pos = TerminalClient(base, tmp_path / "pos.json")
    pos.activate(code)

    # --- the simulator takes payments; dashboard and list show them ----------
    merchant = Merchant.objects.get(pk=kyb.merchant_id)
    cashier = staff_with_pin(merchant, "cashier")
    payer = risk_exempt(funded_payer(1_000_00))
    for amount in (12_34, 56_78, 9_00):
        answer = pay(pos, payer, cashier, amount)
        assert answer.status_code in (200, 201), answer.text
        assert answer.json()["status"] == "completed", answer.json()

    owner_page.goto(f"{base}/")
    assert owner_page.locator("#stat-sales .value").inner_text() == "¥78.12"
    assert _t("Today's sales", lang) in owner_page.inner_text("#stat-sales")
    screenshot(owner_page, f"06-dashboard-{lang}")
    owner_page.goto(f"{base}/transactions/")
    listed = owner_page.inner_text("main table")
    for shown in ("¥12.34", "¥56.78", "¥9.00"):
        assert shown in listed
    screenshot(owner_page, f"07-transactions-{lang}")

    # --- a refund, with OTP --------------------------------------------------
    payment = Payment.objects.get(merchant=merchant, amount=56_78)
    _expire_step_up(owner_page)
    owner_page.goto(f"{base}/transactions/{payment.public_id}/")
    with owner_page.expect_navigation():
        owner_page.locator(f"a[href$='/{payment.public_id}/refund/']").click()
    assert _confirm_otp_if_asked(owner_page, device), "a refund must ask for OTP"
    owner_page.fill("#id_amount", "10.00")
    owner_page.fill("#id_reason", "少找零 / short change")
    screenshot(owner_page, f"08-refund-{lang}")
    with owner_page.expect_navigation():
        owner_page.locator("main form[method=post] button.primary").click()
        question = owner_page.locator("dialog.confirm[open]")
        assert _t("Refund this amount to the payer? A refund cannot be undone.", lang) in (
            question.inner_text()
        )
        screenshot(owner_page, f"08b-refund-confirm-{lang}")
        question.locator("button[value=ok]").click()
    assert Refund.objects.get(payment=payment).amount == 10_00
    assert _t("Refund made.", lang) in owner_page.inner_text(".messages")

    # --- a cashier signs in and cannot see refunds or staff -------------------
    cashier_device = otp_device(cashier.user)
    till = page_for(locale)
    till.goto(f"{base}/login/")
    till.fill("#id_username", cashier.user.email)
    till.fill("#id_password", TEST_PASSWORD)
    _submit(till)
    till.fill("#id_otp_token", otp_code(cashier_device))
    _submit(till)
    nav = till.inner_text("aside nav")
    assert _t("Dashboard", lang) in nav
    assert _t("Staff", lang) not in nav
    assert _t("Transactions", lang) in nav
    till.goto(f"{base}/transactions/{payment.public_id}/")
    assert till.locator(f"a[href$='/{payment.public_id}/refund/']").count() == 0
    for path in (f"/transactions/{payment.public_id}/refund/", "/staff/", "/staff/invite/"):
        response = till.goto(f"{base}{path}")
        assert response.status == 403, path
        assert till.locator("h1").inner_text() == _t("Not allowed", lang)
    screenshot(till, f"09-cashier-refused-{lang}")

    # The pages kept to the strict CSP throughout.
    for page in (owner_page, admin, till):
        assert not [e for e in page.console_errors if "Content Security Policy" in e]
    assert re.search(r"\d{4}-\d{4}-\d{4}", code)

"""What static/js/portal.js does for people, in a real browser: a
destructive action asks first (and nothing happens on "Cancel"), the idle
warning comes before the server's 15 minutes are up and "Stay signed in"
keeps the session, and the language switcher changes the page's language."""

from __future__ import annotations

import time
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django_otp import DEVICE_ID_SESSION_KEY

from apps.accounts.stepup import STEP_UP_SESSION_KEY
from apps.terminals.models import Terminal
from tests.accounts.factories import ShopFactory
from tests.accounts.helpers import otp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(page, live_server, user) -> None:
    """Puts what the two-step sign-in (and a fresh OTP step-up) leaves in
    a session into the browser: these tests are about the pages, the
    sign-in itself is covered by test_merchant_journey."""
    device = otp_device(user)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[STEP_UP_SESSION_KEY] = int(time.time())
    session.create()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )


def test_retiring_a_terminal_asks_for_confirmation_and_cancel_changes_nothing(
    live_server, page_for, screenshot, owner, merchant
):
    terminal = Terminal.objects.create(
        merchant=merchant,
        shop=ShopFactory(merchant=merchant, name="青柠门店"),
        serial_number="SN-RETIRE",
        status=Terminal.Status.ACTIVE,
    )
    page = page_for("en-US")
    _signed_in(page, live_server, owner)
    page.goto(f"{live_server.url}/terminals/{terminal.public_id}/retire/")

    page.locator("main form button.primary, main form button.danger").first.click()
    dialog = page.locator("dialog.confirm")
    assert dialog.is_visible()
    assert "never works again" in dialog.inner_text()
    screenshot(page, "confirm-retire-en")
    dialog.locator("button[value=cancel]").click()
    assert not dialog.is_visible()
    terminal.refresh_from_db()
    assert terminal.status == Terminal.Status.ACTIVE

    page.locator("main form button.primary, main form button.danger").first.click()
    with page.expect_navigation():
        dialog.locator("button[value=ok]").click()
    terminal.refresh_from_db()
    assert terminal.status == Terminal.Status.RETIRED


def test_the_idle_warning_comes_before_the_session_ends_and_can_keep_it(
    live_server, page_for, owner
):
    page = page_for("zh-CN")
    _signed_in(page, live_server, owner)
    page.clock.install()
    page.goto(f"{live_server.url}/")
    warning = page.locator(".idle-warning")
    page.clock.run_for((settings.SESSION_IDLE_SECONDS - 120) * 1000)
    assert warning.count() == 0
    page.clock.run_for(60 * 1000)  # 90 s before the server's limit
    assert warning.is_visible()
    assert "即将被退出登录" in warning.inner_text()
    with page.expect_response(lambda r: r.request.method == "HEAD") as answer:
        warning.locator("button").click()
    assert answer.value.status == 200
    assert warning.count() == 0


def test_the_language_switcher_turns_the_page_into_english_and_back(live_server, page_for, owner):
    page = page_for("zh-CN")
    _signed_in(page, live_server, owner)
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "概览" in page.inner_text("aside nav")
    with page.expect_navigation():
        page.locator(".lang-switch button[value=en]").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Dashboard" in page.inner_text("aside nav")
    with page.expect_navigation():
        page.locator(".lang-switch button[value=zh-hans]").click()
    assert "概览" in page.inner_text("aside nav")

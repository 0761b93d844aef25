"""The portal's front door in a real browser, in both languages."""

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("locale", "heading", "error"),
    [
        ("zh-CN", "登录商户后台", "请输入一个正确的"),
        ("en-US", "Sign in to the merchant portal", "Please enter a correct"),
    ],
)
def test_the_login_page_follows_the_browser_language_and_explains_a_wrong_password(
    live_server, page_for, screenshot, locale, heading, error, owner
):
    page = page_for(locale)
    page.goto(f"{live_server.url}/login/")
    assert page.locator("h1").inner_text() == heading
    page.fill("#id_username", owner.email)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert error in page.locator(".errors").first.inner_text()
    screenshot(page, f"login-error-{locale}")
    # The strict CSP holds: the page itself raised no CSP violation.
    assert not [e for e in page.console_errors if "Content Security Policy" in e]

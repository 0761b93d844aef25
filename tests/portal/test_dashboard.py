"""The merchant dashboard: today's figures in Asia/Shanghai days, the 30-day
chart, terminals and security events, each only of the signed-in merchant,
and navigation by role."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import security_event_record
from apps.risk.models import RiskCase, RiskHold
from apps.terminals.models import Terminal
from apps.transactions.models import PaymentStatus
from tests.accounts.factories import ShopFactory

pytestmark = pytest.mark.django_db


def _local(y, mo, d, h, mi=0):
    return timezone.make_aware(datetime(y, mo, d, h, mi))  # Asia/Shanghai (TIME_ZONE)


def _home(client, user, lang="en"):
    client.force_login(user)
    return client.get(reverse("portal:home"), HTTP_ACCEPT_LANGUAGE=lang)


def test_todays_sales_count_only_paid_payments_of_this_local_day(
    client, owner, make_payment, make_refund
):
    now = timezone.localtime()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    paid = make_payment(12_345, at=midnight + timedelta(minutes=1))
    make_payment(100_000, at=midnight - timedelta(minutes=1))  # yesterday, local time
    make_payment(50_000, status=PaymentStatus.DECLINED)
    make_payment(70_000, status=PaymentStatus.HELD)
    make_refund(paid, 2_345)

    response = _home(client, owner)

    assert response.status_code == 200
    assert response.context["sales"]["count"] == 1
    assert response.context["sales"]["money"].amount == 12_345
    assert response.context["refunds"]["money"].amount == 2_345
    body = response.content.decode()
    assert "¥123.45" in body
    assert "¥23.45" in body


def test_the_chart_has_thirty_local_days_with_today_last(client, owner, make_payment):
    today = timezone.localdate()
    make_payment(1_000, at=timezone.localtime().replace(hour=0, minute=5))
    make_payment(2_000, at=_local(today.year, today.month, today.day, 0, 5) - timedelta(days=3))
    make_payment(9_999, at=timezone.now() - timedelta(days=40))  # outside the window

    response = _home(client, owner)

    bars = response.context["chart"]["bars"]
    assert len(bars) == 30
    assert bars[-1]["day"] == today
    assert bars[-1]["money"].amount == 1_000
    assert bars[-4]["money"].amount == 2_000
    assert response.context["chart"]["total"].amount == 3_000
    assert response.content.decode().count('class="bar') == 30


def test_held_payments_show_the_amount_waiting_for_review(client, owner, merchant, make_payment):
    payment = make_payment(88_800, status=PaymentStatus.HELD)
    case = RiskCase.objects.create(
        kind=RiskCase.Kind.PAYMENT_HOLD, merchant=merchant, title="t", amount=88_800
    )
    RiskHold.objects.create(
        merchant=merchant, case=case, payment_public_id=payment.public_id, amount=88_800
    )

    response = _home(client, owner)

    assert response.context["held"]["count"] == 1
    assert "¥888.00" in response.content.decode()


def test_the_dashboard_never_counts_another_merchants_payments(
    client, owner, other_merchant, make_payment
):
    other_shop = ShopFactory(merchant=other_merchant)
    other_terminal = Terminal.objects.create(
        merchant=other_merchant, shop=other_shop, serial_number="OTHER-1"
    )
    make_payment(99_900, merchant_=other_merchant, terminal_=other_terminal)
    security_event_record(kind="login_lockout", merchant=other_merchant, data={})

    response = _home(client, owner)

    assert response.context["sales"]["count"] == 0
    assert response.context["chart"]["count"] == 0
    assert response.context["security_events"] == []
    assert "OTHER-1" not in response.content.decode()


def test_terminal_status_is_counted_at_a_glance(client, owner, merchant, shop, terminal):
    Terminal.objects.create(merchant=merchant, shop=shop, serial_number="P-2")
    Terminal.objects.create(
        merchant=merchant, shop=shop, serial_number="S-3", status=Terminal.Status.SUSPENDED
    )
    Terminal.objects.create(
        merchant=merchant, shop=shop, serial_number="R-4", status=Terminal.Status.RETIRED
    )

    response = _home(client, owner)

    assert response.context["terminal_counts"] == {"active": 1, "pending": 1, "suspended": 1}
    assert response.context["terminal_total"] == 3


def test_owners_see_their_merchants_security_events_and_cashiers_do_not(
    client, owner, cashier, merchant
):
    security_event_record(kind="login_lockout", merchant=merchant, data={})

    response = _home(client, owner)
    assert [e.kind for e in response.context["security_events"]] == ["login_lockout"]
    assert "Sign-in locked after failed attempts" in response.content.decode()

    client.logout()
    response = _home(client, cashier)
    assert response.context["show_security"] is False
    assert "Sign-in locked" not in response.content.decode()


def test_an_onboarding_merchant_sees_what_to_do_next_instead_of_empty_figures(client, owner):
    response = _home(client, owner)
    body = response.content.decode()
    assert "Next steps" in body
    assert reverse("portal:kyb") in body
    assert reverse("portal:otp-enrol") in body
    assert "No sales in the last 30 days" in body


@pytest.mark.parametrize(
    ("role_fixture", "visible", "hidden"),
    [
        ("owner", ["portal:staff-list", "portal:terminal-list", "portal:activity"], []),
        ("manager", ["portal:staff-list", "portal:terminal-list"], ["portal:activity"]),
        (
            "cashier",
            ["portal:home", "portal:operator-pin"],
            ["portal:staff-list", "portal:terminal-list", "portal:activity"],
        ),
        ("viewer", ["portal:risk-holds"], ["portal:staff-list", "portal:operator-pin"]),
    ],
)
def test_the_navigation_shows_each_role_only_what_it_may_use(
    request, client, role_fixture, visible, hidden
):
    user = request.getfixturevalue(role_fixture)
    response = _home(client, user)
    nav_urls = [item["url"] for item in response.context["nav_items"]]
    for name in visible:
        assert reverse(name) in nav_urls
    for name in hidden:
        assert reverse(name) not in nav_urls


def test_the_current_page_is_marked_in_the_navigation(client, owner):
    client.force_login(owner)
    response = client.get(reverse("portal:staff-list"))
    current = [item["url"] for item in response.context["nav_items"] if item["current"]]
    assert current == [reverse("portal:staff-list")]
    assert 'aria-current="page"' in response.content.decode()


def test_pages_load_only_same_origin_script_and_no_inline_code(client, owner):
    response = _home(client, owner)
    body = response.content.decode()
    assert "<script>" not in body
    assert " style=" not in body
    assert " onclick=" not in body
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert '/static/js/portal.js"' in body


@override_settings(LANGUAGE_CODE="zh-hans")
def test_amounts_are_yuan_with_two_decimals_in_both_languages(client, owner, make_payment):
    make_payment(123_456_789)
    for lang in ("zh-hans", "en"):
        client.logout()
        body = _home(client, owner, lang=lang).content.decode()
        assert "¥1,234,567.89" in body


def test_a_suspended_merchant_is_told_why_payments_stop(client, owner, merchant):
    merchant.status = "suspended"
    merchant.save(update_fields=["status"])
    body = _home(client, owner).content.decode()
    assert "terminals cannot take payments" in body
    assert "Next steps" not in body

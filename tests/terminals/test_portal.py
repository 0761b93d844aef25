"""Terminal pages of the merchant portal: OTP step-up, activation code once,
status actions, and nobody reaches another merchant's terminal (404)."""

import time

import pytest
from django.urls import reverse

from apps.accounts.stepup import STEP_UP_SESSION_KEY
from apps.audit.models import AuditRecord
from apps.terminals.models import Terminal
from apps.terminals.services import terminal_register
from tests.accounts.factories import ShopFactory


def _login(client, user, *, stepped_up=True):
    client.force_login(user)
    if stepped_up:
        session = client.session
        session[STEP_UP_SESSION_KEY] = int(time.time())
        session.save()


@pytest.fixture
def other_terminal(other_merchant, outsider):
    shop = ShopFactory(merchant=other_merchant)
    return terminal_register(
        merchant=other_merchant, shop=shop, serial_number="B-1", actor=outsider
    )[0]


def test_registering_a_terminal_needs_a_fresh_otp_step_up(client, owner, shop):
    _login(client, owner, stepped_up=False)
    response = client.get(reverse("portal:terminal-register"))
    assert response.status_code == 302
    assert "next=" in response["Location"]


def test_an_owner_registers_a_terminal_and_sees_its_activation_code_once(client, owner, shop):
    _login(client, owner)
    response = client.post(
        reverse("portal:terminal-register"),
        {"shop": shop.public_id, "serial_number": "SN-9", "model": "P2", "bind_radius_m": 150},
    )
    assert response.status_code == 200
    body = response.content.decode()
    terminal = Terminal.objects.get(serial_number="SN-9")
    code = response.context["code"]
    assert code in body
    assert "data:image/png;base64," in body
    assert terminal.status == Terminal.Status.PENDING
    assert terminal.bind_radius_m == 150
    assert code not in str(
        Terminal.objects.filter(pk=terminal.pk).values().get()
    )  # only a hash is stored
    assert response["Cache-Control"] == "no-store"
    assert AuditRecord.objects.filter(
        action="terminal.registered", target_id=str(terminal.public_id)
    ).exists()
    assert (
        code
        not in client.get(
            reverse("portal:terminal-detail", args=[terminal.public_id])
        ).content.decode()
    )


def test_a_duplicate_serial_number_is_reported_beside_the_field(client, owner, shop):
    terminal_register(merchant=shop.merchant, shop=shop, serial_number="SN-9", actor=owner)
    _login(client, owner)
    response = client.post(
        reverse("portal:terminal-register"),
        {"shop": shop.public_id, "serial_number": "SN-9", "bind_radius_m": 150},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["serial_number"]


def test_a_merchant_without_approved_kyb_cannot_register_a_terminal(client, owner, shop, merchant):
    merchant.status = "onboarding"
    merchant.save(update_fields=["status"])
    _login(client, owner)
    response = client.post(
        reverse("portal:terminal-register"),
        {"shop": shop.public_id, "serial_number": "SN-9", "bind_radius_m": 150},
    )
    assert response.status_code == 200
    assert "KYB" in str(response.context["form"].non_field_errors())
    assert not Terminal.objects.exists()


def test_another_merchants_shop_cannot_be_chosen(client, owner, shop, other_merchant):
    foreign = ShopFactory(merchant=other_merchant)
    _login(client, owner)
    response = client.post(
        reverse("portal:terminal-register"),
        {"shop": foreign.public_id, "serial_number": "SN-9", "bind_radius_m": 150},
    )
    assert response.context["form"].errors["shop"]
    assert not Terminal.objects.exists()


def test_the_list_and_detail_show_only_this_merchants_terminals(
    client, owner, registered, other_terminal
):
    terminal, _code = registered
    _login(client, owner)
    body = client.get(reverse("portal:terminal-list")).content.decode()
    assert terminal.serial_number in body
    assert other_terminal.serial_number not in body
    detail = client.get(reverse("portal:terminal-detail", args=[terminal.public_id]))
    assert detail.status_code == 200
    assert str(terminal.public_id) in detail.content.decode()


@pytest.mark.parametrize("action", ["suspend", "resume", "retire", "rotate"])
def test_another_merchants_staff_cannot_see_or_act_on_a_terminal(
    client, owner, other_terminal, action
):
    _login(client, owner)
    assert (
        client.get(reverse("portal:terminal-detail", args=[other_terminal.public_id])).status_code
        == 404
    )
    assert (
        client.get(
            reverse("portal:terminal-action", args=[other_terminal.public_id, action])
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("portal:terminal-action", args=[other_terminal.public_id, action])
        ).status_code
        == 404
    )
    other_terminal.refresh_from_db()
    assert other_terminal.status == Terminal.Status.PENDING


def test_suspend_resume_retire_from_the_portal_are_audited(client, owner, registered):
    terminal, _code = registered
    _login(client, owner)
    client.post(
        reverse("portal:terminal-action", args=[terminal.public_id, "suspend"]), {"reason": "lost"}
    )
    terminal.refresh_from_db()
    assert (terminal.status, terminal.status_reason) == ("suspended", "lost")
    client.post(reverse("portal:terminal-action", args=[terminal.public_id, "resume"]))
    terminal.refresh_from_db()
    assert terminal.status == "pending"  # never activated: back to waiting for activation
    client.post(reverse("portal:terminal-action", args=[terminal.public_id, "retire"]))
    terminal.refresh_from_db()
    assert terminal.status == "retired"
    actions = set(
        AuditRecord.objects.filter(target_id=str(terminal.public_id)).values_list(
            "action", flat=True
        )
    )
    assert {"terminal.suspended", "terminal.resumed", "terminal.retired"} <= actions


def test_rotate_shows_a_new_activation_code(client, owner, registered):
    terminal, first_code = registered
    _login(client, owner)
    response = client.post(reverse("portal:terminal-action", args=[terminal.public_id, "rotate"]))
    assert response.status_code == 200
    assert response.context["code"] != first_code


def test_resume_and_rotate_need_a_step_up_but_suspend_does_not(client, owner, registered):
    terminal, _code = registered
    _login(client, owner, stepped_up=False)
    assert (
        client.post(
            reverse("portal:terminal-action", args=[terminal.public_id, "rotate"])
        ).status_code
        == 302
    )
    client.post(reverse("portal:terminal-action", args=[terminal.public_id, "suspend"]))
    terminal.refresh_from_db()
    assert terminal.status == "suspended"
    client.post(reverse("portal:terminal-action", args=[terminal.public_id, "resume"]))
    terminal.refresh_from_db()
    assert terminal.status == "suspended"


def test_a_cashier_may_not_open_the_terminal_pages(client, cashier, registered):
    terminal, _code = registered
    _login(client, cashier)
    assert client.get(reverse("portal:terminal-list")).status_code == 403
    assert (
        client.post(
            reverse("portal:terminal-action", args=[terminal.public_id, "suspend"])
        ).status_code
        == 403
    )


def test_the_detail_shows_the_last_location_and_recent_security_events(client, owner, registered):
    from apps.terminals.services import terminal_location_report, terminal_signature_failure_record

    terminal, _code = registered
    terminal_location_report(terminal=terminal, latitude="31.240400", longitude="121.473700")
    terminal_signature_failure_record(
        terminal=terminal, code="digest_mismatch", key_id=str(terminal.public_id)
    )
    _login(client, owner)
    response = client.get(reverse("portal:terminal-detail", args=[terminal.public_id]))
    body = response.content.decode()
    assert "31.240400" in body
    assert response.context["outside_radius"] is True
    assert 1100 < response.context["distance_m"] < 1125
    assert "digest_mismatch" in body

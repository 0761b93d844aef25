"""The risk desk in the admin: review a held payment over HTTP, the reason is
mandatory, rule changes go through the audited service and refresh the
engine's cached configuration; the dashboard shows cases, alerts and runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditRecord
from apps.risk.config import config_snapshot
from apps.risk.models import RiskCase, RuleConfig
from apps.risk.services import alert_raise
from tests.risk.conftest import held_payment_case
from tests.transactions.factories import HOLD, platform_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(db):
    return held_payment_case(amount=20_000, payer_funds=50_000)[2]


def test_a_reviewer_claims_and_declines_a_hold_in_the_admin(staff_client, case):
    url = reverse("admin:risk_riskcase_review", args=[case.pk])
    assert staff_client.get(url).status_code == 200
    staff_client.post(url, {"action": "claim"})
    response = staff_client.post(url, {"action": "decline", "reason": ""})
    assert response.status_code == 200
    assert (
        "required" in response.content.decode().lower()
        or "reason" in response.content.decode().lower()
    )
    assert platform_balance(HOLD) == 20_000
    response = staff_client.post(url, {"action": "decline", "reason": "payer disputes it"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    case.refresh_from_db()
    assert case.status == RiskCase.Status.DECLINED
    assert platform_balance(HOLD) == 0


def test_the_dashboard_shows_open_cases_and_alerts(staff_client, case):
    alert_raise(
        kind="balance_drift", severity="critical", title="Drift on account X", dedup_key="d:x"
    )
    body = staff_client.get(reverse("admin:risk_riskcase_dashboard")).content.decode()
    assert "held payment" in body
    assert "Drift on account X" in body


def test_a_rule_change_in_the_admin_is_versioned_audited_and_live(staff_client, merchant):
    before = (
        config_snapshot()
        .effective(merchant.mcc, merchant.pk)["amount.single_limit"]
        .params["max_amount"]
    )
    response = staff_client.post(
        reverse("admin:risk_ruleconfig_add"),
        {
            "rule_code": "amount.single_limit",
            "scope": "mcc",
            "mcc": merchant.mcc,
            "mode": "",
            "params": '{"max_amount": 12345}',
            "change_reason": "tighten cafés",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    config = RuleConfig.objects.get(rule_code="amount.single_limit", mcc=merchant.mcc)
    assert config.versions.count() == 1
    assert AuditRecord.objects.filter(
        action="risk.rule_config_changed", target_id=str(config.pk)
    ).exists()
    after = (
        config_snapshot()
        .effective(merchant.mcc, merchant.pk)["amount.single_limit"]
        .params["max_amount"]
    )
    assert (before, after) == (5_000_000, 12345)


def test_an_unknown_rule_parameter_is_refused_beside_the_field(staff_client):
    response = staff_client.post(
        reverse("admin:risk_ruleconfig_add"),
        {
            "rule_code": "amount.single_limit",
            "scope": "default",
            "mcc": "",
            "mode": "",
            "params": '{"max_amont": 1}',
            "change_reason": "typo",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "has no parameter" in response.content.decode()
    assert not RuleConfig.objects.exists()


def test_the_merchant_sees_its_holds_but_not_the_rules_or_other_merchants(client, case, outsider):
    from apps.accounts.models import Membership
    from tests.accounts.factories import MembershipFactory

    owner = MembershipFactory(merchant=case.merchant, role="owner").user
    assert Membership.objects.filter(user=owner).count() == 1
    client.force_login(owner)
    body = client.get(reverse("portal:risk-holds")).content.decode()
    assert str(case.payment_public_id) in body
    assert "impossible_travel" not in body
    assert "velocity" not in body
    client.force_login(outsider)
    body = client.get(reverse("portal:risk-holds")).content.decode()
    assert str(case.payment_public_id) not in body


@pytest.mark.parametrize(
    "model", ["ruleconfig", "listentry", "riskdecisionrecord", "riskcase", "alert", "monitorrun"]
)
def test_every_risk_admin_list_opens(staff_client, case, model):
    alert_raise(kind="k", severity="info", title="t", dedup_key="k")
    assert staff_client.get(reverse(f"admin:risk_{model}_changelist")).status_code == 200


def test_the_risk_app_index_links_the_dashboard(staff_client):
    body = staff_client.get(reverse("admin:app_list", args=["risk"])).content.decode()
    assert reverse("admin:risk_riskcase_dashboard") in body

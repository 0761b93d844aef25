"""The risk case queue in the admin: deciding a case takes the reviewer to
the oldest open case they may take (unassigned or theirs, not locked by a
colleague, not one they gave the first approval of), or back to the open
cases saying the queue is empty; "Review next" opens that case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from apps.risk.models import RiskCase
from apps.risk.services import risk_case_claim
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import otp_force_login
from tests.risk.conftest import held_payment_case
from tests.transactions.factories import HOLD, merchant_with_rate, platform_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(db):
    return UserFactory(is_staff=True, email="colleague@example.test")


@pytest.fixture
def hold_case():
    merchant = merchant_with_rate(38)

    def make(*, hours_ago: int, amount: int = 20_000) -> RiskCase:
        _payer, _merchant, case = held_payment_case(
            amount=amount,
            payer_funds=amount + 10_000,
            merchant=merchant,
            title=f"held {hours_ago}h ago",
        )
        RiskCase.objects.filter(pk=case.pk).update(
            created_at=timezone.now() - timedelta(hours=hours_ago)
        )
        return case

    return make


def _review(case: RiskCase) -> str:
    return reverse("admin:risk_riskcase_review", args=[case.pk])


def _claim_and(client, case: RiskCase, action: str, reason: str = "checked with the payer"):
    client.post(_review(case), {"action": "claim"})
    return client.post(_review(case), {"action": action, "reason": reason})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_declining_a_case_opens_the_oldest_case_the_reviewer_may_take(
    staff_client, hold_case, colleague
):
    decided = hold_case(hours_ago=1)
    taken_by_colleague = hold_case(hours_ago=50)
    risk_case_claim(case=taken_by_colleague, reviewer=colleague)
    assigned_to_colleague = hold_case(hours_ago=40)
    RiskCase.objects.filter(pk=assigned_to_colleague.pk).update(assigned_to=colleague)
    expired_lock = hold_case(hours_ago=30)
    RiskCase.objects.filter(pk=expired_lock.pk).update(
        locked_by=colleague, locked_until=timezone.now() - timedelta(minutes=1)
    )
    hold_case(hours_ago=2)

    response = _claim_and(staff_client, decided, "decline")

    assert response.status_code == 302
    assert response["Location"] == _review(expired_lock)
    [_claimed, message] = _messages(response)
    assert f"Case {str(decided.public_id)[:8]}: declined." in message
    assert "Next in the queue: held payment: held 30h ago" in message
    decided.refresh_from_db()
    assert decided.status == RiskCase.Status.DECLINED


def test_approving_the_last_case_goes_back_to_the_open_cases_saying_the_queue_is_empty(
    staff_client, hold_case
):
    case = hold_case(hours_ago=3)
    response = _claim_and(staff_client, case, "approve")
    assert response["Location"] == (
        reverse("admin:risk_riskcase_changelist") + "?status__exact=open"
    )
    assert "The queue is empty." in _messages(response)[-1]
    case.refresh_from_db()
    assert case.status == RiskCase.Status.APPROVED
    assert platform_balance(HOLD) == 0


def test_a_decision_without_a_reason_stays_on_the_case(staff_client, hold_case):
    case = hold_case(hours_ago=3)
    hold_case(hours_ago=9)
    response = _claim_and(staff_client, case, "decline", reason="")
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.status == RiskCase.Status.OPEN
    assert platform_balance(HOLD) == 40_000


def test_after_a_first_approval_the_case_goes_to_a_second_approver_not_back_to_the_first(
    client, staff_client, hold_case, colleague, settings
):
    settings.RISK_SECOND_APPROVER_AMOUNT = 10_000
    big = hold_case(hours_ago=5, amount=50_000)

    response = _claim_and(staff_client, big, "approve")

    big.refresh_from_db()
    assert big.status == RiskCase.Status.AWAITING_SECOND
    assert "a second approver decides" in _messages(response)[-1]
    assert "The queue is empty." in _messages(response)[-1]
    second = client.__class__()
    otp_force_login(second, colleague)
    assert second.get(reverse("admin:risk_riskcase_next"))["Location"] == _review(big)


def test_review_next_opens_the_oldest_open_case_or_says_the_queue_is_empty(staff_client, hold_case):
    empty = staff_client.get(reverse("admin:risk_riskcase_next"), follow=True)
    assert "The queue is empty." in empty.content.decode()
    hold_case(hours_ago=1)
    oldest = hold_case(hours_ago=12)
    response = staff_client.get(reverse("admin:risk_riskcase_next"))
    assert response["Location"] == _review(oldest)


def test_the_case_list_and_the_dashboard_link_to_review_next(staff_client, hold_case):
    hold_case(hours_ago=1)
    listing = staff_client.get(reverse("admin:risk_riskcase_changelist")).content.decode()
    assert reverse("admin:risk_riskcase_next") in listing
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:risk_riskcase_next") in index

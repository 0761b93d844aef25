"""One merchant's staff can never reach another merchant's rows: 404, not 403."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import Membership
from apps.accounts.tenancy import TenantScopedMixin
from tests.accounts.factories import MembershipFactory


@pytest.fixture
def other_staff(other_merchant):
    return MembershipFactory(merchant=other_merchant, role="cashier")


@pytest.fixture
def own_staff(merchant):
    return MembershipFactory(merchant=merchant, role="cashier")


def test_owner_sees_own_staff_member_in_portal(client, owner, own_staff):
    client.force_login(owner)
    response = client.get(reverse("portal:staff-detail", args=[own_staff.public_id]))
    assert response.status_code == 200
    assert own_staff.user.email in response.content.decode()


def test_it_answers_404_for_another_merchants_staff_member_in_portal(client, owner, other_staff):
    client.force_login(owner)
    response = client.get(reverse("portal:staff-detail", args=[other_staff.public_id]))
    assert response.status_code == 404


def test_portal_list_shows_only_own_merchants_staff(client, owner, own_staff, other_staff):
    client.force_login(owner)
    body = client.get(reverse("portal:staff-list")).content.decode()
    assert own_staff.user.email in body
    assert other_staff.user.email not in body


def test_it_answers_404_for_another_merchants_staff_member_in_api(owner, other_staff, own_staff):
    api = APIClient()
    api.force_authenticate(owner)
    assert api.get(f"/api/v1/merchant/staff/{own_staff.public_id}").status_code == 200
    response = api.get(f"/api/v1/merchant/staff/{other_staff.public_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_api_merchant_header_cannot_name_a_merchant_the_user_does_not_belong_to(
    owner, other_merchant, other_staff
):
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(
        "/api/v1/merchant/staff/", headers={"Anfu-Merchant": str(other_merchant.public_id)}
    )
    assert response.status_code == 404


def test_api_list_is_scoped_to_the_current_merchant(owner, own_staff, other_staff):
    api = APIClient()
    api.force_authenticate(owner)
    ids = {row["id"] for row in api.get("/api/v1/merchant/staff/").json()}
    assert str(own_staff.public_id) in ids
    assert str(other_staff.public_id) not in ids


def test_a_member_of_two_merchants_switches_between_them(
    client, owner, other_merchant, other_staff
):
    MembershipFactory(merchant=other_merchant, user=owner, role="manager")
    client.force_login(owner)
    assert (
        client.get(reverse("portal:staff-detail", args=[other_staff.public_id])).status_code == 404
    )
    client.post(reverse("portal:merchant-switch"), {"merchant": str(other_merchant.public_id)})
    assert (
        client.get(reverse("portal:staff-detail", args=[other_staff.public_id])).status_code == 200
    )


def test_a_cashier_may_not_open_the_staff_pages(client, cashier):
    client.force_login(cashier)
    assert client.get(reverse("portal:staff-list")).status_code == 403


def test_scoped_views_cannot_override_get_queryset():
    with pytest.raises(TypeError, match="refine_queryset"):

        class Widening(TenantScopedMixin):
            model = Membership

            def get_queryset(self):
                return Membership.objects.all()


def test_a_scoped_query_without_a_merchant_is_refused(db):
    with pytest.raises(ValueError, match="needs a merchant"):
        Membership.objects.for_merchant(None)


@pytest.mark.postgres
def test_isolation_holds_on_postgres(client, owner, other_staff):
    from django.db import connection

    assert connection.vendor == "postgresql"
    client.force_login(owner)
    assert (
        client.get(reverse("portal:staff-detail", args=[other_staff.public_id])).status_code == 404
    )

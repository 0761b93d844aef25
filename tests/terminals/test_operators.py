"""Operators (cashiers) at a terminal: verifier records for offline checks,
and sign-in with the transaction password sealed to the server's key."""

import pytest

from apps.accounts.models import OperatorPin
from apps.accounts.pins import pin_verifier_check, pin_verifier_new
from tests.accounts.factories import MembershipFactory
from tests.terminals.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)

PIN = "135790"


def _operator_pin(membership, pin=PIN):
    salt, iterations, verifier = pin_verifier_new(pin)
    return OperatorPin.objects.create(
        merchant=membership.merchant,
        membership=membership,
        salt=salt,
        iterations=iterations,
        verifier=verifier,
    )


@pytest.fixture
def operator(merchant):
    membership = MembershipFactory(merchant=merchant, role="cashier")
    _operator_pin(membership)
    return membership


def test_config_gives_operator_verifiers_hours_limits_and_time_never_a_pin(
    pos, operator, other_merchant
):
    outsider_cashier = MembershipFactory(merchant=other_merchant, role="cashier")
    _operator_pin(outsider_cashier)

    config = pos.get("/api/v1/terminal/config").json()

    assert [o["operator_id"] for o in config["operators"]] == [str(operator.public_id)]
    record = config["operators"][0]
    assert PIN not in str(config)
    # The terminal checks a PIN offline with the record alone.
    assert pin_verifier_check(
        PIN,
        salt_b64=record["salt"],
        iterations=record["iterations"],
        verifier_b64=record["verifier"],
    )
    assert not pin_verifier_check(
        "246801",
        salt_b64=record["salt"],
        iterations=record["iterations"],
        verifier_b64=record["verifier"],
    )
    assert config["business_hours"] == {
        "timezone": "Asia/Shanghai",
        "opens_at": "08:00",
        "closes_at": "22:00",
    }
    assert config["limits"]["clock_skew_seconds"] == 300
    assert config["server_time"]
    assert config["shop"]["bind_radius_m"] == 300


def test_an_operator_signs_in_with_the_sealed_transaction_password(pos, operator):
    response = pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(operator.public_id), "pin_sealed": pos.seal(PIN)},
    )
    assert response.status_code == 200
    assert response.json()["operator_id"] == str(operator.public_id)


def test_a_wrong_pin_is_refused_and_five_lock_the_operator(pos, operator):
    for _ in range(4):
        response = pos.post(
            "/api/v1/terminal/operators/sign-in",
            {"operator_id": str(operator.public_id), "pin_sealed": pos.seal("246801")},
        )
        assert (response.status_code, error_code(response)) == (403, "operator_pin_wrong")
    pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(operator.public_id), "pin_sealed": pos.seal("246801")},
    )

    response = pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(operator.public_id), "pin_sealed": pos.seal(PIN)},
    )
    assert (response.status_code, error_code(response)) == (423, "operator_locked")


def test_another_merchants_operator_is_unknown_here(pos, other_merchant):
    stranger = MembershipFactory(merchant=other_merchant, role="cashier")
    _operator_pin(stranger)
    response = pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(stranger.public_id), "pin_sealed": pos.seal(PIN)},
    )
    assert (response.status_code, error_code(response)) == (404, "operator_unknown")


def test_a_pin_in_clear_or_sealed_to_another_key_is_refused(pos, operator):
    from apps.terminals.crypto import secret_seal

    response = pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(operator.public_id), "pin_sealed": PIN},
    )
    assert (response.status_code, error_code(response)) == (400, "secret_undecryptable")
    foreign = secret_seal("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", PIN)
    response = pos.post(
        "/api/v1/terminal/operators/sign-in",
        {"operator_id": str(operator.public_id), "pin_sealed": foreign},
    )
    assert error_code(response) == "secret_undecryptable"

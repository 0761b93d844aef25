"""Two-way authentication through real HTTP (live server): every request is
signed by the terminal's own key, every answer by the server's."""

import datetime

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519

from apps.audit.models import SecurityEvent
from apps.terminals.client import ActivationRefused, TerminalClient, UntrustedResponse
from apps.terminals.crypto import server_signing_keys
from apps.terminals.models import Terminal, TerminalKey
from apps.terminals.services import terminal_register, terminal_retire, terminal_suspend
from tests.terminals.conftest import error_code, send, signed_request

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_terminal_activates_with_its_code_and_learns_the_server_keys(
    live_server, registered, tmp_path
):
    terminal, code = registered
    pos = TerminalClient(live_server.url, tmp_path / "pos.json")
    answer = pos.activate(code)

    terminal.refresh_from_db()
    assert answer["terminal_id"] == str(terminal.public_id) == pos.terminal_id
    assert terminal.status == Terminal.Status.ACTIVE
    assert answer["server_keys"]["signing"][0]["public_key"] == server_signing_keys()[0].public_b64
    assert answer["server_keys"]["encryption"][0]["public_key"]
    # Only the public key reached the server; the state file keeps the private one.
    assert TerminalKey.objects.get(terminal=terminal).public_key == pos.public_key_b64
    assert (tmp_path / "pos.json").stat().st_mode & 0o077 == 0


def test_a_signed_request_is_accepted_and_its_answer_is_bound_to_it(pos):
    response = pos.get("/api/v1/terminal/ping")  # the client verifies the answer's signature

    assert response.status_code == 200
    assert response.json()["terminal_id"] == pos.terminal_id
    signature_input = response.headers["Signature-Input"]
    assert signature_input.startswith(
        'sig=("@status" "signature";req;key="sig" "content-digest");created='
    )
    assert f'keyid="{server_signing_keys()[0].key_id}";alg="ed25519"' in signature_input


def test_a_request_signs_the_components_design_md_lists(pos):
    prepared = signed_request(
        pos,
        "POST",
        "/api/v1/terminal/heartbeat",
        {"latitude": "31.2304", "longitude": "121.4737"},
        headers={"Idempotency-Key": "k-123"},
    )
    assert prepared.headers["Signature-Input"].startswith(
        'sig=("@method" "@target-uri" "idempotency-key" "content-digest");created='
    )
    assert f'keyid="{pos.terminal_id}";alg="ed25519";nonce="' in prepared.headers["Signature-Input"]
    assert send(pos, prepared).status_code == 200


def test_it_refuses_a_reused_activation_code(live_server, registered, pos, tmp_path):
    _terminal, code = registered
    thief = TerminalClient(
        live_server.url, tmp_path / "thief.json", server_key=server_signing_keys()[0].public_b64
    )
    with pytest.raises(ActivationRefused) as refused:
        thief.activate(code)
    assert refused.value.code == "activation_code_used"


def test_it_refuses_an_expired_activation_code(live_server, registered, tmp_path):
    terminal, code = registered
    Terminal.objects.filter(pk=terminal.pk).update(
        activation_code_expires_at=datetime.datetime.now(datetime.UTC)
        - datetime.timedelta(seconds=1)
    )
    pos = TerminalClient(
        live_server.url, tmp_path / "pos.json", server_key=server_signing_keys()[0].public_b64
    )
    with pytest.raises(ActivationRefused) as refused:
        pos.activate(code)
    assert refused.value.code == "activation_code_expired"
    with pytest.raises(ActivationRefused) as refused:
        pos.activate("0000-0000-0000")
    assert refused.value.code == "activation_code_invalid"


def test_it_refuses_a_tampered_body(pos):
    prepared = signed_request(
        pos, "POST", "/api/v1/terminal/heartbeat", {"latitude": "31.2304", "longitude": "121.4737"}
    )
    prepared.body = prepared.body.replace(b"31.2304", b"39.9087")

    response = send(pos, prepared)
    assert response.status_code == 401
    assert error_code(response) == "digest_mismatch"


def test_it_refuses_a_tampered_path(pos):
    prepared = signed_request(pos, "GET", "/api/v1/terminal/ping")
    prepared.url = prepared.url.replace("/ping", "/config")

    response = send(pos, prepared)
    assert response.status_code == 401
    assert error_code(response) == "signature_invalid"


def test_it_refuses_a_request_signed_with_another_terminals_key(
    pos, live_server, shop, owner, tmp_path
):
    _other, code = terminal_register(
        merchant=shop.merchant, shop=shop, serial_number="SN-0002", actor=owner
    )
    other_pos = TerminalClient(live_server.url, tmp_path / "other.json")
    other_pos.activate(code)

    prepared = signed_request(
        pos, "GET", "/api/v1/terminal/ping", private_key=other_pos.private_key
    )
    response = send(pos, prepared)
    assert response.status_code == 401
    assert error_code(response) == "signature_invalid"


def test_it_refuses_a_keyid_that_names_no_terminal(pos):
    prepared = signed_request(
        pos, "GET", "/api/v1/terminal/ping", key_id="7c9e6679-7425-40de-944b-e07fc1f90ae7"
    )
    response = send(pos, prepared)
    assert response.status_code == 401
    assert error_code(response) == "signature_unknown_key"


@pytest.mark.parametrize("offset", [-301, 301])
def test_it_refuses_a_created_outside_300_seconds(pos, offset):
    created = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset)
    response = send(pos, signed_request(pos, "GET", "/api/v1/terminal/ping", created=created))
    assert response.status_code == 401
    assert error_code(response) == "signature_expired"


def test_it_accepts_a_created_within_the_window(pos):
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=240)
    assert (
        send(pos, signed_request(pos, "GET", "/api/v1/terminal/ping", created=created)).status_code
        == 200
    )


def test_it_refuses_a_replayed_nonce(pos):
    prepared = signed_request(pos, "GET", "/api/v1/terminal/ping")
    assert send(pos, prepared).status_code == 200

    replay = send(pos, prepared)
    assert replay.status_code == 401
    assert error_code(replay) == "signature_replayed"
    assert SecurityEvent.objects.filter(
        kind="terminal_signature_replay", data__terminal_id=pos.terminal_id
    ).exists()


def test_it_refuses_a_missing_or_malformed_signature(pos):
    bare = pos.session.get(pos.base_url + "/api/v1/terminal/ping", timeout=10)
    pos.verify_response(bare)
    assert (bare.status_code, error_code(bare)) == (401, "signature_missing")

    prepared = signed_request(pos, "GET", "/api/v1/terminal/ping")
    prepared.headers["Signature-Input"] = prepared.headers["Signature-Input"].replace(
        ';alg="ed25519"', ""
    )
    response = send(pos, prepared)
    assert (response.status_code, error_code(response)) == (401, "signature_malformed")

    prepared = signed_request(pos, "GET", "/api/v1/terminal/ping", nonce="short")
    response = send(pos, prepared)
    assert (response.status_code, error_code(response)) == (401, "signature_malformed")


def test_it_refuses_an_idempotency_key_the_signature_does_not_cover(pos):
    prepared = signed_request(
        pos, "POST", "/api/v1/terminal/heartbeat", {"latitude": "1", "longitude": "2"}
    )
    prepared.headers["Idempotency-Key"] = "added-later"
    response = send(pos, prepared)
    assert (response.status_code, error_code(response)) == (401, "signature_malformed")


def test_a_suspended_terminal_is_refused_at_once(pos, terminal, owner):
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    terminal_suspend(terminal=terminal, actor=owner, reason="lost")

    response = pos.get("/api/v1/terminal/ping")
    assert response.status_code == 403
    assert error_code(response) == "terminal_inactive"


def test_a_retired_terminal_is_refused_and_cannot_be_reactivated(pos, terminal, owner):
    terminal_retire(terminal=terminal, actor=owner)
    response = pos.get("/api/v1/terminal/ping")
    assert (response.status_code, error_code(response)) == (403, "terminal_inactive")
    assert not TerminalKey.objects.filter(terminal=terminal, expires_at__isnull=True).exists()


def test_a_burst_of_bad_signatures_suspends_the_terminal(pos, terminal, settings):
    settings.TERMINAL_FAILURE_BURST_LIMIT = 3
    for _ in range(4):
        prepared = signed_request(pos, "GET", "/api/v1/terminal/ping")
        prepared.url += "?tampered=1"
        assert error_code(send(pos, prepared)) == "signature_invalid"

    terminal.refresh_from_db()
    assert terminal.status == Terminal.Status.SUSPENDED
    assert (
        SecurityEvent.objects.filter(
            kind="terminal_suspended_burst", severity="critical", data__terminal_id=pos.terminal_id
        ).count()
        == 1
    )
    assert (
        SecurityEvent.objects.filter(
            kind="terminal_signature_failure", data__terminal_id=pos.terminal_id
        ).count()
        == 4
    )
    response = pos.get("/api/v1/terminal/ping")
    assert error_code(response) == "terminal_inactive"


def test_every_terminal_api_answer_carries_a_valid_server_signature(pos, settings):
    # The client raises UntrustedResponse on any unsigned or badly signed answer.
    assert pos.get("/api/v1/terminal/no-such-endpoint").status_code == 404
    assert pos.post("/api/v1/terminal/heartbeat", {"latitude": "999"}).status_code == 400
    assert pos.request("DELETE", "/api/v1/terminal/ping").status_code == 405
    unsigned_answer = requests.get(pos.base_url + "/api/v1/terminal/time", timeout=10)
    pos.verify_response(unsigned_answer)  # signed, though not bound to a request signature


def test_each_terminal_has_its_own_rate_limit_and_the_429_is_signed(pos, settings):
    settings.TERMINAL_RATE_LIMIT = 2
    responses = [pos.get("/api/v1/terminal/ping") for _ in range(3)]  # each answer verified
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert error_code(responses[-1]) == "rate_limited"
    assert 1 <= int(responses[-1].headers["Retry-After"]) <= 60


def test_the_client_refuses_an_unsigned_answer(pos):
    response = requests.get(pos.base_url + "/healthz", timeout=10)
    with pytest.raises(UntrustedResponse):
        pos.verify_response(response)


def test_the_client_refuses_an_answer_whose_signature_does_not_verify(pos):
    response = pos.get("/api/v1/terminal/ping")
    response._content = response.content.replace(b'"ok":true', b'"ok":false')
    with pytest.raises(UntrustedResponse):
        pos.verify_response(response)


def test_the_client_refuses_an_answer_swapped_from_another_request(pos):
    first = pos.get("/api/v1/terminal/ping")
    second = pos.get("/api/v1/terminal/ping")
    first.request = second.request  # a man in the middle answers request 2 with answer 1
    with pytest.raises(UntrustedResponse):
        pos.verify_response(first)


def test_the_client_refuses_an_answer_signed_by_an_unknown_server_key(pos, settings):
    settings.TERMINAL_SIGNING_KEYS = ["AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="]
    with pytest.raises(UntrustedResponse):
        pos.get("/api/v1/terminal/ping")


def test_the_simulator_refuses_an_answer_it_cannot_verify(pos, settings, tmp_path):
    from django.core.management import CommandError, call_command

    call_command("pos_simulator", "--state", str(tmp_path / "pos.json"), "ping")  # verifies fine
    settings.TERMINAL_SIGNING_KEYS = ["AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="]
    with pytest.raises(CommandError, match="refused the server's answer"):
        call_command("pos_simulator", "--state", str(tmp_path / "pos.json"), "ping")


def test_an_inactive_merchant_cannot_activate_a_terminal(live_server, registered, tmp_path):
    terminal, code = registered
    terminal.merchant.status = "suspended"
    terminal.merchant.save(update_fields=["status"])
    with pytest.raises(ActivationRefused) as refused:
        TerminalClient(
            live_server.url, tmp_path / "pos.json", server_key=server_signing_keys()[0].public_b64
        ).activate(code)
    assert refused.value.code == "merchant_not_active"


def test_a_new_key_pair_is_never_a_reused_one(live_server, registered, pos, shop, owner, tmp_path):
    _other, code = terminal_register(
        merchant=shop.merchant, shop=shop, serial_number="SN-0003", actor=owner
    )
    clone = TerminalClient(
        live_server.url, tmp_path / "clone.json", server_key=server_signing_keys()[0].public_b64
    )
    clone.state["private_key"] = pos.state["private_key"]
    with pytest.raises(ActivationRefused) as refused:
        clone.activate(code)
    assert refused.value.code == "public_key_reused"


def test_activation_must_be_signed_by_the_key_it_registers(live_server, registered):
    _terminal, code = registered
    body = {"activation_code": code, "public_key": TerminalClient(live_server.url).public_key_b64}
    impostor = TerminalClient(live_server.url)
    prepared = requests.Request(
        "POST", live_server.url + "/api/v1/terminal/activate", json=body
    ).prepare()
    from apps.terminals.signing import request_sign

    request_sign(
        prepared, private_key=impostor.private_key, key_id="activation", body=prepared.body
    )
    response = requests.Session().send(prepared, timeout=10)
    assert (response.status_code, error_code(response)) == (401, "signature_invalid")
    assert Terminal.objects.get(pk=_terminal.pk).status == Terminal.Status.PENDING


def test_an_ed25519_key_object_round_trips_through_the_state_file(tmp_path, live_server):
    first = TerminalClient(live_server.url, tmp_path / "s.json")
    again = TerminalClient(live_server.url, tmp_path / "s.json")
    assert first.public_key_b64 == again.public_key_b64
    assert isinstance(again.private_key, ed25519.Ed25519PrivateKey)


def test_a_suspended_merchants_terminals_are_refused(pos, terminal):
    from apps.terminals.selectors import terminal_auth_cache_forget

    terminal.merchant.status = "suspended"
    terminal.merchant.save(update_fields=["status"])
    terminal_auth_cache_forget(terminal.public_id)
    response = pos.get("/api/v1/terminal/ping")
    assert (response.status_code, error_code(response)) == (403, "merchant_not_active")


@pytest.mark.redis
def test_with_redis_a_cached_terminal_is_still_refused_the_moment_it_is_suspended(
    pos, terminal, owner
):
    for _ in range(3):
        assert pos.get("/api/v1/terminal/ping").status_code == 200  # cached now
    terminal_suspend(terminal=terminal, actor=owner, reason="stolen")
    assert error_code(pos.get("/api/v1/terminal/ping")) == "terminal_inactive"


def test_a_signed_request_acts_as_its_terminal_in_audit_records(terminal):
    from apps.audit.services import _actor_fields
    from apps.terminals.api.auth import TerminalPrincipal

    principal = TerminalPrincipal(terminal)
    assert principal.is_authenticated
    assert not principal.is_anonymous
    assert _actor_fields(principal) == (
        f"terminal:{terminal.public_id}",
        f"terminal {terminal.serial_number}",
    )

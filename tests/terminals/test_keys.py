"""Key rotation without downtime, both sides; the sealed-box secret transport."""

import base64
import datetime
import secrets

import pytest

from apps.audit.models import AuditRecord
from apps.terminals.client import TerminalClient, UntrustedResponse
from apps.terminals.crypto import (
    SecretUndecryptable,
    secret_open,
    secret_seal,
    server_encryption_keys,
    server_signing_keys,
)
from apps.terminals.models import TerminalKey
from apps.terminals.selectors import terminal_auth_cache_forget
from apps.terminals.services import terminal_activation_code_issue
from tests.terminals.conftest import error_code, send, signed_request


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.mark.django_db(transaction=True)
def test_a_terminal_rotates_its_key_and_the_old_one_works_for_the_grace_period(pos, terminal):
    old_private = pos.private_key
    pos.rotate_key()
    assert pos.get("/api/v1/terminal/ping").status_code == 200  # new key

    old_signed = signed_request(pos, "GET", "/api/v1/terminal/ping", private_key=old_private)
    assert send(pos, old_signed).status_code == 200  # old key, within the grace period

    TerminalKey.objects.filter(terminal=terminal, expires_at__isnull=False).update(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    )
    terminal_auth_cache_forget(terminal.public_id)  # the update bypassed the services
    response = send(
        pos, signed_request(pos, "GET", "/api/v1/terminal/ping", private_key=old_private)
    )
    assert (response.status_code, error_code(response)) == (401, "signature_invalid")
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    assert AuditRecord.objects.filter(
        action="terminal.key_rotated", target_id=str(terminal.public_id)
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_the_portal_rotation_code_rekeys_an_active_terminal(pos, terminal, owner):
    old_private = pos.private_key
    code = terminal_activation_code_issue(terminal=terminal, actor=owner)
    answer = pos.activate(code)  # an activated client makes a new key pair for a re-key

    assert answer["terminal_id"] == pos.terminal_id
    assert pos.private_key != old_private
    assert pos.get("/api/v1/terminal/ping").status_code == 200
    # The previous key still works for the grace period.
    assert (
        send(
            pos, signed_request(pos, "GET", "/api/v1/terminal/ping", private_key=old_private)
        ).status_code
        == 200
    )
    assert AuditRecord.objects.filter(action="terminal.rekeyed").exists()


@pytest.mark.django_db(transaction=True)
def test_the_server_signing_key_rotates_without_refusing_a_terminal(pos, settings):
    old = settings.TERMINAL_SIGNING_KEYS[0]
    new = _new_key()
    # 1. the new key is published (listed after the current one) and learnt from /config
    settings.TERMINAL_SIGNING_KEYS = [old, new]
    config = pos.refresh_config()
    assert [k["key_id"] for k in config["server_keys"]["signing"]] == [
        k.key_id for k in server_signing_keys()
    ]
    # 2. it becomes current: answers are signed with it and still verify
    settings.TERMINAL_SIGNING_KEYS = [new, old]
    response = pos.get("/api/v1/terminal/ping")
    assert f'keyid="{server_signing_keys()[0].key_id}"' in response.headers["Signature-Input"]
    # a terminal that never learnt the new key refuses the answer
    stale = TerminalClient(pos.base_url, pos.state_path)
    stale.state["server_keys"]["signing"] = [
        k
        for k in stale.state["server_keys"]["signing"]
        if k["key_id"] != server_signing_keys()[0].key_id
    ]
    with pytest.raises(UntrustedResponse):
        stale.get("/api/v1/terminal/ping")


def test_a_sealed_secret_opens_with_the_current_or_a_previous_encryption_key(settings):
    old = settings.TERMINAL_ENCRYPTION_KEYS[0]
    sealed_to_old = secret_seal(server_encryption_keys()[0].public_b64, "135790")
    settings.TERMINAL_ENCRYPTION_KEYS = [_new_key(), old]
    assert secret_open(sealed_to_old) == "135790"
    assert secret_open(secret_seal(server_encryption_keys()[0].public_b64, "246801")) == "246801"
    settings.TERMINAL_ENCRYPTION_KEYS = [_new_key()]  # the grace period is over
    with pytest.raises(SecretUndecryptable):
        secret_open(sealed_to_old)


def test_a_sealed_secret_is_not_the_clear_text_and_differs_each_time():
    public = server_encryption_keys()[0].public_b64
    first, second = secret_seal(public, "135790"), secret_seal(public, "135790")
    assert first != second
    assert b"135790" not in base64.b64decode(first)
    with pytest.raises(SecretUndecryptable):
        secret_open("not base64!")

"""The OpenAPI schema describes the signing scheme; the simulator drives the
API end to end."""

import json

import pytest
from django.core.management import call_command

from apps.accounts.models import OperatorPin
from apps.accounts.pins import pin_verifier_new
from apps.terminals.crypto import server_signing_keys
from tests.accounts.factories import MembershipFactory


def test_the_schema_documents_the_terminal_api_and_its_signature_scheme(client, owner):
    client.force_login(owner)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    scheme = schema["components"]["securitySchemes"]["TerminalSignature"]
    assert '"signature";req;key="sig"' in scheme["description"]
    assert "/api/v1/terminal/ping" in schema["paths"]
    assert {"TerminalSignature": []} in schema["paths"]["/api/v1/terminal/config"]["get"][
        "security"
    ]
    assert "/api/v1/terminal/activate" in schema["paths"]


@pytest.mark.django_db(transaction=True)
def test_the_simulator_activates_from_the_qr_code_and_signs_an_operator_in(
    live_server, registered, merchant, tmp_path, capsys
):
    _terminal, code = registered
    cashier = MembershipFactory(merchant=merchant, role="cashier")
    salt, iterations, verifier = pin_verifier_new("135790")
    OperatorPin.objects.create(
        merchant=merchant, membership=cashier, salt=salt, iterations=iterations, verifier=verifier
    )
    qr = json.dumps(
        {
            "anfu": "activate",
            "url": live_server.url,
            "code": code,
            "server_key": server_signing_keys()[0].public_b64,
        }
    )
    state = str(tmp_path / "pos.json")

    call_command("pos_simulator", "--state", state, "activate", "--qr", qr)
    call_command(
        "pos_simulator",
        "--state",
        state,
        "sign-in",
        "--operator",
        str(cashier.public_id),
        "--pin",
        "135790",
    )
    call_command(
        "pos_simulator", "--state", state, "heartbeat", "--lat", "31.2304", "--lng", "121.4737"
    )

    out = capsys.readouterr().out
    assert '"terminal_id"' in out
    assert '"status": 200' in out
    assert str(cashier.public_id) in out
    assert "135790" not in out

"""A POS terminal simulator over the terminal client library.

    manage.py pos_simulator --url http://127.0.0.1:8000 --state pos.json activate 1234-5678-9012
    manage.py pos_simulator --state pos.json ping | config | rotate-key
    manage.py pos_simulator --state pos.json sign-in --operator <id> --pin 135790
    manage.py pos_simulator --state pos.json heartbeat --lat 31.2304 --lng 121.4737
    manage.py pos_simulator --state pos.json request POST /api/v1/terminal/... --json '{...}' --idempotency-key K

The key pair lives in the state file and never leaves it. Every answer's
signature is verified; an unsigned or badly signed answer is refused (exit
status 1, nothing of it printed as data).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.terminals.client import ActivationRefused, TerminalClient, UntrustedResponse


class Command(BaseCommand):
    help = "Simulate a POS terminal: activate, sign requests, verify every answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="server base URL (stored in the state file at activation)"
        )
        parser.add_argument(
            "--state", required=True, help="state file: key pair, terminal id, server keys"
        )
        sub = parser.add_subparsers(dest="action", required=True)
        activate = sub.add_parser("activate")
        activate.add_argument("code", nargs="?", help="activation code")
        activate.add_argument(
            "--qr", help="the JSON of the portal's QR code (code, url and pinned server key)"
        )
        activate.add_argument("--server-key", help="pin the server's signing public key (base64)")
        sub.add_parser("ping")
        sub.add_parser("config")
        sub.add_parser("rotate-key")
        sign_in = sub.add_parser("sign-in")
        sign_in.add_argument("--operator", required=True)
        sign_in.add_argument("--pin", required=True)
        heartbeat = sub.add_parser("heartbeat")
        heartbeat.add_argument("--lat", required=True)
        heartbeat.add_argument("--lng", required=True)
        request = sub.add_parser("request")
        request.add_argument("method")
        request.add_argument("path")
        request.add_argument("--json", dest="body")
        request.add_argument("--idempotency-key")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        url, server_key, code = options.get("url"), options.get("server_key"), options.get("code")
        if action == "activate" and options.get("qr"):
            qr = json.loads(options["qr"])
            url, server_key, code = (
                url or qr["url"],
                server_key or qr["server_key"],
                code or qr["code"],
            )
        state_url = None
        try:
            with open(options["state"]) as handle:
                state_url = json.load(handle).get("base_url")
        except (OSError, ValueError):
            pass
        url = url or state_url
        if not url:
            raise CommandError("--url is needed until the terminal is activated")
        client = TerminalClient(url, options["state"], server_key=server_key)
        try:
            result = self._run(client, action, code, options)
        except UntrustedResponse as exc:
            raise CommandError(f"refused the server's answer: {exc}") from exc
        except ActivationRefused as exc:
            raise CommandError(f"activation refused: {exc}") from exc
        self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))

    def _run(self, client: TerminalClient, action: str, code: str | None, options: dict) -> Any:
        if action == "activate":
            if not code:
                raise CommandError("an activation code (or --qr) is needed")
            return client.activate(code)
        if action == "ping":
            return _answer(client.get("/api/v1/terminal/ping"))
        if action == "config":
            return client.refresh_config()
        if action == "rotate-key":
            return client.rotate_key()
        if action == "sign-in":
            body = {"operator_id": options["operator"], "pin_sealed": client.seal(options["pin"])}
            return _answer(client.post("/api/v1/terminal/operators/sign-in", body))
        if action == "heartbeat":
            return _answer(
                client.post(
                    "/api/v1/terminal/heartbeat",
                    {"latitude": options["lat"], "longitude": options["lng"]},
                )
            )
        body = json.loads(options["body"]) if options.get("body") else None
        return _answer(
            client.request(
                options["method"],
                options["path"],
                body,
                idempotency_key=options.get("idempotency_key"),
            )
        )


def _answer(response: Any) -> dict:
    return {"status": response.status_code, "body": response.json() if response.content else None}

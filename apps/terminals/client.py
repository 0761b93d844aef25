"""A terminal's side of the API: the library the POS simulator, the tests,
the benchmarks and other apps' tests drive the terminal API with.

    client = TerminalClient("http://127.0.0.1:8000", state_path="pos.json")
    client.activate("1234-5678-9012")                 # once; creates the key pair
    client.get("/api/v1/terminal/config").json()       # signed; answer verified
    client.post("/api/v1/terminal/payments", {...}, idempotency_key="...")
    client.seal("123456")                              # a secret for the server

Public API: TerminalClient(base_url, state_path=None, *, server_key=None),
.activate(code), .request(method, path, json=None, *, idempotency_key=None,
headers=None), .get(path), .post(path, json, *, idempotency_key=None),
.seal(secret), .rotate_key(), .terminal_id, .state. Every answer's signature
is verified; an unsigned or badly signed answer raises UntrustedResponse
(the response is never returned). API errors are returned as responses
(status >= 400) with a verified signature, for the caller to inspect.

The private key stays in the state file (mode 0600) and never leaves the
terminal. No Django settings are needed: this runs on a terminal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ed25519

from apps.terminals.crypto import (
    b64,
    b64decode_key,
    ed25519_private_raw,
    ed25519_public_key,
    ed25519_public_raw,
    key_id_for,
    secret_seal,
)
from apps.terminals.signing import (
    RESPONSE_COMPONENTS,
    SignatureError,
    request_sign,
    response_verify,
)

ACTIVATION_KEY_ID = "activation"


class UntrustedResponse(Exception):
    """The server's answer is unsigned or its signature does not verify."""

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


class TerminalClient:
    def __init__(
        self,
        base_url: str,
        state_path: str | os.PathLike | None = None,
        *,
        server_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`state_path` keeps the key pair, terminal id and server keys; None
        keeps them in memory. `server_key` pins the server's signing public
        key (base64) for the activation answer, e.g. from the portal's QR code."""
        self.base_url = base_url.rstrip("/")
        self.state_path = Path(state_path) if state_path else None
        self.pinned_server_key = server_key
        self.timeout = timeout
        self.session = requests.Session()
        self.state: dict[str, Any] = {}
        if self.state_path and self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
        if "private_key" not in self.state:
            self.state["private_key"] = b64(
                ed25519_private_raw(ed25519.Ed25519PrivateKey.generate())
            )
            self._save()

    # --- state ---------------------------------------------------------------
    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.state, handle, indent=2)
        tmp.replace(self.state_path)

    @property
    def private_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(
            b64decode_key(self.state["private_key"])
        )

    @property
    def public_key_b64(self) -> str:
        return b64(ed25519_public_raw(self.private_key))

    @property
    def terminal_id(self) -> str | None:
        return self.state.get("terminal_id")

    def _server_signing_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        return {
            k["key_id"]: ed25519_public_key(k["public_key"])
            for k in self.state.get("server_keys", {}).get("signing", [])
        }

    def _remember_server_keys(self, server_keys: dict) -> None:
        for key in server_keys.get("signing", []) + server_keys.get("encryption", []):
            # A key id is a fingerprint of its key: refuse a mismatched pair.
            if key_id_for(b64decode_key(key["public_key"])) != key["key_id"]:
                raise UntrustedResponse("A server key does not match its key id.")
        self.state["server_keys"] = server_keys
        self._save()

    # --- HTTP ----------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        key_id: str,
        private_key: ed25519.Ed25519PrivateKey,
        idempotency_key: str | None,
        headers: dict | None,
        trusted_keys: dict[str, ed25519.Ed25519PublicKey] | None,
    ) -> requests.Response:
        data = (
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            if body is not None
            else None
        )
        request_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            request_headers["Content-Type"] = "application/json"
        if idempotency_key:
            request_headers["Idempotency-Key"] = idempotency_key
        prepared = requests.Request(
            method.upper(), self.base_url + path, data=data, headers=request_headers
        ).prepare()
        request_sign(prepared, private_key=private_key, key_id=key_id, body=data)
        response = self.session.send(prepared, timeout=self.timeout)
        self.verify_response(response, trusted_keys=trusted_keys)
        return response

    def verify_response(
        self,
        response: requests.Response,
        *,
        trusted_keys: dict[str, ed25519.Ed25519PublicKey] | None = None,
    ) -> str:
        """Raises UntrustedResponse unless the answer is signed by a known
        server key over its status, its body and our request's signature."""
        keys = trusted_keys if trusted_keys is not None else self._server_signing_keys()
        if not keys:
            raise UntrustedResponse("No server key is known yet; activate first.", response)
        # An answer to a signed request must be bound to that signature; only
        # an answer to an unsigned request (/time) may lack the binding.
        sent_signed = response.request is not None and "Signature" in response.request.headers
        require = RESPONSE_COMPONENTS if sent_signed else ("@status", "content-digest")
        try:
            return response_verify(
                response, server_keys=keys, body=response.content, require=require
            )
        except SignatureError as exc:
            raise UntrustedResponse(exc.message, response) from exc

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: dict | None = None,
    ) -> requests.Response:
        """A signed request to the terminal API; the answer is verified."""
        if not self.terminal_id:
            raise RuntimeError("This terminal is not activated.")
        return self._send(
            method,
            path,
            json_body,
            key_id=self.terminal_id,
            private_key=self.private_key,
            idempotency_key=idempotency_key,
            headers=headers,
            trusted_keys=None,
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json_body, **kwargs)

    # --- lifecycle -----------------------------------------------------------
    def activate(self, code: str) -> dict:
        """Registers this terminal's public key with a one-time code. The
        answer is checked against the signing key it announces (and the pinned
        key, if any). Returns the activation answer; raises on refusal."""
        new_key = ed25519.Ed25519PrivateKey.generate() if self.terminal_id else self.private_key
        public_b64 = b64(ed25519_public_raw(new_key))
        data = json.dumps({"activation_code": code, "public_key": public_b64}).encode()
        prepared = requests.Request(
            "POST",
            self.base_url + "/api/v1/terminal/activate",
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        ).prepare()
        request_sign(prepared, private_key=new_key, key_id=ACTIVATION_KEY_ID, body=data)
        response = self.session.send(prepared, timeout=self.timeout)
        if response.status_code != 201:
            # Refusals are verified against the keys we already know, if any.
            known = self._server_signing_keys() or self._pinned_keys()
            if known:
                self.verify_response(response, trusted_keys=known)
            raise ActivationRefused(response)
        answer = response.json()
        announced = {
            k["key_id"]: ed25519_public_key(k["public_key"])
            for k in answer["server_keys"]["signing"]
        }
        if self.pinned_server_key and self.pinned_server_key not in {
            k["public_key"] for k in answer["server_keys"]["signing"]
        }:
            raise UntrustedResponse("The server's key is not the pinned one.", response)
        self.verify_response(response, trusted_keys=self._pinned_keys() or announced)
        self._remember_server_keys(answer["server_keys"])
        self.state.update(
            terminal_id=answer["terminal_id"],
            private_key=b64(ed25519_private_raw(new_key)),
            base_url=self.base_url,
        )
        self._save()
        return answer

    def _pinned_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        if not self.pinned_server_key:
            return {}
        return {
            key_id_for(b64decode_key(self.pinned_server_key)): ed25519_public_key(
                self.pinned_server_key
            )
        }

    def refresh_config(self) -> dict:
        """GET /config; also learns the server's current published keys."""
        response = self.get("/api/v1/terminal/config")
        response.raise_for_status()
        config = response.json()
        self._remember_server_keys(config["server_keys"])
        return config

    def rotate_key(self) -> dict:
        """Replaces this terminal's key pair (signed with the current key)."""
        new_key = ed25519.Ed25519PrivateKey.generate()
        response = self.post(
            "/api/v1/terminal/keys/rotate", {"public_key": b64(ed25519_public_raw(new_key))}
        )
        response.raise_for_status()
        self.state["private_key"] = b64(ed25519_private_raw(new_key))
        self._save()
        return response.json()

    def seal(self, secret: str) -> str:
        """A secret (PIN, payment password) sealed to the server's current
        encryption key, for a `*_sealed` field."""
        keys = self.state.get("server_keys", {}).get("encryption", [])
        if not keys:
            raise RuntimeError("No server encryption key is known yet; activate first.")
        return secret_seal(keys[0]["public_key"], secret)


class ActivationRefused(Exception):
    def __init__(self, response: requests.Response) -> None:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        super().__init__(
            f"{response.status_code} {error.get('code', '')}: {error.get('message', '')}"
        )
        self.response = response
        self.code = error.get("code", "")

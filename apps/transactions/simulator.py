"""A POS day, driven through the signed terminal API by a TerminalClient:
many payers and amounts, step-ups with the sealed payment password, some
refunds (supervisor PIN), some reversals of "lost" answers, and the
end-of-day batch close with the terminal's own counts.

Used by `manage.py pos_day` (real HTTP to a running server) and by the demo
seeder, which sends the same signed requests to the application in-process
(`InProcessAdapter`: requests → Django's WSGI handler, no socket).
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class InProcessAdapter(BaseAdapter):
    """A requests transport that calls the Django application directly."""

    def __init__(self) -> None:
        super().__init__()
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        environ = {
            "REQUEST_METHOD": request.method,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "testserver",
            # As an HTTP client would send them: requests adds Host only
            # on the wire, and https's default port is 443.
            "HTTP_HOST": url.netloc,
            "SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        chunks = self.handler(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        response = requests.Response()
        response.status_code = int(captured["status"].split(" ", 1)[0])
        response.headers = CaseInsensitiveDict(captured["headers"])
        response._content = content
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


@dataclass
class DayStats:
    payments: int = 0
    completed: int = 0
    stepped_up: int = 0
    held: int = 0
    declined: int = 0
    refunds: int = 0
    refund_total: int = 0
    reversals: int = 0
    sales_total: int = 0
    errors: list[str] = field(default_factory=list)
    batch: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {
            "errors": self.errors[:10]
        }


def _amount(rng: random.Random) -> int:
    """Amounts like a café's and a shop's: mostly small, some larger, a few
    above the password-free limit (which asks for the payment password)."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randrange(8_00, 60_00, 50)
    if roll < 0.95:
        return rng.randrange(60_00, 600_00, 100)
    return rng.randrange(1_000_00, 1_800_00, 1000)


def simulate_day(
    client: Any,
    *,
    payers: list[Any],
    code_for: Callable[[Any], str],
    operator_id: str,
    supervisor_id: str,
    supervisor_pin: str,
    payment_password: str,
    count: int = 40,
    refund_share: float = 0.08,
    reversal_share: float = 0.04,
    seed: int | None = None,
    close_batch: bool = True,
) -> DayStats:
    """Runs `count` payments through `client` (an activated TerminalClient);
    `code_for(payer)` is the payer's wallet showing a fresh payment code."""
    rng = random.Random(seed)  # noqa: S311 - simulated shoppers, not secrets
    stats = DayStats()
    refundable: list[tuple[str, int]] = []
    for _ in range(count):
        payer = rng.choice(payers)
        amount = _amount(rng)
        key = uuid.uuid4().hex
        body = {
            "amount": amount,
            "currency": "CNY",
            "payment_code": code_for(payer),
            "operator_id": operator_id,
        }
        stats.payments += 1
        if rng.random() < reversal_share:
            # The answer is "lost": the terminal reverses by the key.
            client.post("/api/v1/terminal/payments", body, idempotency_key=key)
            answer = client.post(
                "/api/v1/terminal/reversals",
                {"original_idempotency_key": key},
                idempotency_key=uuid.uuid4().hex,
            )
            if answer.status_code in (200, 201):
                stats.reversals += 1
            else:
                stats.errors.append(answer.text[:200])
            continue
        response = client.post("/api/v1/terminal/payments", body, idempotency_key=key)
        if response.status_code != 201:
            stats.errors.append(response.text[:200])
            continue
        payment = response.json()
        if payment["status"] == "awaiting_password":
            stats.stepped_up += 1
            response = client.post(
                f"/api/v1/terminal/payments/{payment['id']}/confirm",
                {"password_sealed": client.seal(payment_password)},
                idempotency_key=uuid.uuid4().hex,
            )
            payment = response.json() if response.status_code == 200 else payment
        status = payment.get("status")
        if status == "completed":
            stats.completed += 1
            stats.sales_total += amount
            refundable.append((payment["id"], amount))
        elif status == "held":
            stats.held += 1
        else:
            stats.declined += 1
    for payment_id, amount in refundable:
        if rng.random() >= refund_share * 2:
            continue
        part = amount if rng.random() < 0.5 else max(1, amount // 2)
        response = client.post(
            f"/api/v1/terminal/payments/{payment_id}/refunds",
            {
                "amount": part,
                "reason": "customer returned the item",
                "supervisor_id": supervisor_id,
                "supervisor_pin_sealed": client.seal(supervisor_pin),
            },
            idempotency_key=uuid.uuid4().hex,
        )
        if response.status_code == 201:
            stats.refunds += 1
            stats.refund_total += part
        else:
            stats.errors.append(response.text[:200])
    if close_batch:
        response = client.post(
            "/api/v1/terminal/batches/close",
            {
                "sales_count": stats.completed,
                "sales_total": stats.sales_total,
                "refund_count": stats.refunds,
                "refund_total": stats.refund_total,
            },
            idempotency_key=uuid.uuid4().hex,
        )
        stats.batch = response.json()
    return stats

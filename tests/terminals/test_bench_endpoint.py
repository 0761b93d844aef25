"""bench/signing.py's unsigned twin of the signed ping (mounted only with
TERMINAL_BENCH_ENDPOINTS): the two must differ in the signatures alone, or
the benchmark counts something else as the cost of signing."""

from __future__ import annotations

import json

from rest_framework.test import APIRequestFactory


def test_the_unsigned_twin_answers_what_the_signed_ping_answers(pos):
    from apps.terminals.api.bench_urls import UnsignedPingView

    twin = UnsignedPingView.as_view()(APIRequestFactory().get("/api/v1/bench/ping"))
    twin.render()
    signed = pos.get("/api/v1/terminal/ping")

    body, signed_body = json.loads(twin.content), signed.json()
    assert (twin.status_code, signed.status_code) == (200, 200)
    assert list(body) == list(signed_body)
    assert body["ok"] is True
    assert len(body["terminal_id"]) == len(signed_body["terminal_id"])
    assert "Signature" in signed.headers
    assert "Signature" not in twin

"""The terminal API (/api/v1/terminal/): thin views over services and
selectors. Every request except /activate and /time is signed by the
terminal; every response is signed by the server (middleware)."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import ApiError
from apps.core.ratelimit import client_ip, rate_limit_hit
from apps.terminals import services
from apps.terminals.api import serializers as s
from apps.terminals.api.auth import signature_error
from apps.terminals.api.base import TerminalAPIView
from apps.terminals.api.messages import DjangoRequestMessage
from apps.terminals.crypto import ed25519_public_key, server_public_keys
from apps.terminals.replay import nonce_claim
from apps.terminals.selectors import terminal_config, terminal_distance_from_shop_m
from apps.terminals.signing import (
    SignatureError,
    created_check,
    request_signature_input_parse,
    request_verify,
)

ACTIVATION_KEY_ID = "activation"
ACTIVATION_RATE = (20, 60)  # per client IP: codes are 12 digits, but no guessing


class ActivateView(APIView):
    """Signed with the key being registered (keyid "activation"): proves the
    terminal holds its private key, and binds the server's answer to it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.ActivateInput,
        responses={201: s.ActivateOutput},
        auth=[],
        description='Sign this request with the new key, keyid "activation".',
    )
    def post(self, request: Any) -> Response:
        if rate_limit_hit("terminal-activate", client_ip(request), *ACTIVATION_RATE) is not None:
            raise ApiError(
                "rate_limited", "Too many activation attempts; wait a minute.", status_code=429
            )
        django_request = request._request
        body = django_request.body
        try:
            parsed = request_signature_input_parse(django_request.headers, has_body=bool(body))
            if parsed.key_id != ACTIVATION_KEY_ID:
                raise SignatureError(
                    "signature_malformed",
                    'An activation request is signed with keyid "activation".',
                )
        except SignatureError as exc:
            raise signature_error(exc.code, exc.message) from None
        data = s.ActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            public_key = ed25519_public_key(data.validated_data["public_key"])
        except ValueError:
            raise ApiError(
                "public_key_invalid",
                "public_key must be base64 of a raw 32-byte Ed25519 key.",
                param="public_key",
            ) from None
        try:
            created_check(
                parsed.created, skew_seconds=settings.TERMINAL_CLOCK_SKEW_SECONDS, now=time.time()
            )
            request_verify(
                DjangoRequestMessage(django_request),
                key_id=ACTIVATION_KEY_ID,
                public_keys=[public_key],
                body=body,
                skew_seconds=settings.TERMINAL_CLOCK_SKEW_SECONDS,
            )
            if not nonce_claim(scope=ACTIVATION_KEY_ID, nonce=parsed.nonce):
                raise SignatureError("signature_replayed", "This nonce was already used.")
        except SignatureError as exc:
            raise signature_error(exc.code, exc.message) from None
        terminal = services.terminal_activate(
            code=data.validated_data["activation_code"],
            public_key_b64=data.validated_data["public_key"],
            request=django_request,
        )
        shop = terminal.shop
        return Response(
            {
                "terminal_id": str(terminal.public_id),
                "merchant": {
                    "id": str(terminal.merchant.public_id),
                    "name": terminal.merchant.name,
                },
                "shop": {
                    "id": str(shop.public_id),
                    "name": shop.name,
                    "bind_radius_m": terminal.bind_radius_m,
                },
                "server_keys": server_public_keys(),
                "server_time": timezone.now().isoformat(),
            },
            status=201,
        )


class TimeView(APIView):
    """Unsigned: lets a terminal set its clock before it signs anything (the
    answer is still signed by the server)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=s.PingOutput, auth=[])
    def get(self, request: Any) -> Response:
        return Response({"ok": True, "server_time": timezone.now().isoformat()})


def ping_answer(terminal_id: uuid.UUID) -> Response:
    """What GET /api/v1/terminal/ping answers (and bench/signing.py's
    unsigned twin of it)."""
    return Response(
        {"ok": True, "terminal_id": str(terminal_id), "server_time": timezone.now().isoformat()}
    )


class PingView(TerminalAPIView):
    """A signed no-op: checks the terminal's keys and clock end to end."""

    @extend_schema(responses=s.PingOutput)
    def get(self, request: Any) -> Response:
        return ping_answer(self.terminal.public_id)


class ConfigView(TerminalAPIView):
    @extend_schema(responses=s.ConfigOutput)
    def get(self, request: Any) -> Response:
        return Response(terminal_config(terminal=self.terminal))


class KeyRotateView(TerminalAPIView):
    """Signed with the current key; the new key is current at once and the
    previous one keeps working for TERMINAL_KEY_GRACE_SECONDS."""

    @extend_schema(request=s.KeyRotateInput, responses=s.KeyRotateOutput)
    def post(self, request: Any) -> Response:
        data = s.KeyRotateInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.terminal_key_rotate(
            terminal=self.terminal,
            public_key_b64=data.validated_data["public_key"],
            request=request._request,
        )
        grace_end = key.created_at + datetime.timedelta(seconds=settings.TERMINAL_KEY_GRACE_SECONDS)
        return Response(
            {
                "key_created_at": key.created_at.isoformat(),
                "previous_keys_valid_until": grace_end.isoformat(),
            }
        )


class OperatorSignInView(TerminalAPIView):
    @extend_schema(request=s.OperatorSignInInput, responses=s.OperatorSignInOutput)
    def post(self, request: Any) -> Response:
        data = s.OperatorSignInInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.operator_pin_check(
            terminal=self.terminal,
            operator_id=str(data.validated_data["operator_id"]),
            pin_sealed=data.validated_data["pin_sealed"],
            request=request._request,
        )
        return Response(
            {
                "operator_id": str(membership.public_id),
                "name": membership.user.display_name or membership.user.email.split("@")[0],
                "role": membership.role,
            }
        )


class HeartbeatView(TerminalAPIView):
    """Reports the terminal's coordinates (payments report them too)."""

    @extend_schema(request=s.HeartbeatInput, responses=s.HeartbeatOutput)
    def post(self, request: Any) -> Response:
        data = s.HeartbeatInput(data=request.data)
        data.is_valid(raise_exception=True)
        lat, lng = data.validated_data["latitude"], data.validated_data["longitude"]
        services.terminal_location_report(terminal=self.terminal, latitude=lat, longitude=lng)
        distance = terminal_distance_from_shop_m(self.terminal, lat, lng)
        return Response(
            {
                "distance_from_shop_m": round(distance, 1),
                "within_bind_radius": distance <= self.terminal.bind_radius_m,
                "server_time": timezone.now().isoformat(),
            }
        )

"""bench/signing.py only (TERMINAL_BENCH_ENDPOINTS=1): /api/v1/terminal/ping
with neither request nor response signing, to measure what signing costs.
It answers what the signed ping answers, for a terminal id of the same
form, so the two differ in nothing but the signatures and the terminal
they establish."""

import uuid
from typing import Any

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.terminals.api.views import ping_answer


class UnsignedPingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    terminal_id = uuid.uuid4()

    def get(self, request: Any) -> Response:
        return ping_answer(self.terminal_id)


urlpatterns = [path("ping", UnsignedPingView.as_view(), name="bench-ping")]

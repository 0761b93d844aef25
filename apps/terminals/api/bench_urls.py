"""bench/signing.py only (TERMINAL_BENCH_ENDPOINTS=1): the same no-op view as
/api/v1/terminal/ping with neither request nor response signing, to measure
what signing costs."""

from django.urls import path
from rest_framework.permissions import AllowAny

from apps.terminals.api.views import TimeView

urlpatterns = [
    path(
        "ping",
        TimeView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="bench-ping",
    ),
]

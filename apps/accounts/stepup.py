"""OTP step-up for sensitive portal actions (registering a terminal, refunds,
withdrawals, setting a cashier PIN): the user must have confirmed a TOTP
code in this session within OTP_STEP_UP_SECONDS.

    class TerminalRegisterView(StepUpRequiredMixin, PortalView, FormView): ...
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

STEP_UP_SESSION_KEY = "otp_step_up_at"


def stepup_mark(request: HttpRequest) -> None:
    """Records that the user just confirmed an OTP code in this session."""
    request.session[STEP_UP_SESSION_KEY] = int(time.time())


def stepup_is_fresh(request: HttpRequest) -> bool:
    """True when this session confirmed an OTP code within OTP_STEP_UP_SECONDS."""
    confirmed_at = request.session.get(STEP_UP_SESSION_KEY)
    if (
        confirmed_at is None
        or not getattr(request, "user", None)
        or not request.user.is_authenticated
    ):
        return False
    return 0 <= int(time.time()) - int(confirmed_at) <= settings.OTP_STEP_UP_SECONDS


def stepup_redirect(request: HttpRequest) -> HttpResponse:
    from apps.accounts.services import otp_has_device

    name = "portal:otp-step-up" if otp_has_device(request.user) else "portal:otp-enrol"  # type: ignore[arg-type]
    return redirect(f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}")


class StepUpRequiredMixin:
    """Put before PortalView in the bases. Without a fresh OTP confirmation
    the request goes to the step-up page (or to enrolment when the user has
    no authenticator yet) and comes back through ?next=."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not stepup_is_fresh(request):
            return stepup_redirect(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

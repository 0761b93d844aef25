"""The base of every terminal API view (this app's and the transactions
app's): signed by an active terminal, tenant = the terminal's merchant."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import generics
from rest_framework.permissions import BasePermission

from apps.accounts.api.base import TenantScopedAPIMixin
from apps.terminals.api.auth import TerminalSignatureAuthentication, terminal_replay_refuse
from apps.terminals.models import Terminal
from apps.terminals.replay import nonce_claim


class IsSignedTerminal(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return getattr(request._request, "terminal", None) is not None


class TerminalAPIView(TenantScopedAPIMixin, generics.GenericAPIView):
    """Subclass for a terminal endpoint. `self.terminal` is the verified
    terminal; `request.merchant` its merchant, so `get_queryset()` (through
    `refine_queryset`) sees only that merchant's rows. Responses are signed by
    TerminalResponseSigningMiddleware.

    `nonce_kept_by_idempotency`: the view's service keeps the request's nonce
    in its idempotency record (apps.transactions), which is the durable
    record of the nonce (replay.py); any other view claims a TerminalNonce
    row here, before it acts."""

    authentication_classes = [TerminalSignatureAuthentication]
    permission_classes = [IsSignedTerminal]
    nonce_kept_by_idempotency = False

    @property
    def terminal(self) -> Terminal:
        return self.request._request.terminal

    @property
    def terminal_nonce(self) -> str:
        return self.request._request.terminal_nonce

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Without Redis the admission's claim was this row already.
        durable_claim_here = settings.REDIS_URL and not self.nonce_kept_by_idempotency
        if durable_claim_here and not nonce_claim(
            scope=str(self.terminal.public_id), nonce=self.terminal_nonce
        ):
            raise terminal_replay_refuse(terminal=self.terminal, request=request._request)

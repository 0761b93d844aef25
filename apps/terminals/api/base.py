"""The base of every terminal API view (this app's and the transactions
app's): signed by an active terminal, tenant = the terminal's merchant."""

from __future__ import annotations

from typing import Any

from rest_framework import generics
from rest_framework.permissions import BasePermission

from apps.accounts.api.base import TenantScopedAPIMixin
from apps.terminals.api.auth import TerminalSignatureAuthentication
from apps.terminals.models import Terminal


class IsSignedTerminal(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return getattr(request._request, "terminal", None) is not None


class TerminalAPIView(TenantScopedAPIMixin, generics.GenericAPIView):
    """Subclass for a terminal endpoint. `self.terminal` is the verified
    terminal; `request.merchant` its merchant, so `get_queryset()` (through
    `refine_queryset`) sees only that merchant's rows. Responses are signed by
    TerminalResponseSigningMiddleware."""

    authentication_classes = [TerminalSignatureAuthentication]
    permission_classes = [IsSignedTerminal]

    @property
    def terminal(self) -> Terminal:
        return self.request._request.terminal

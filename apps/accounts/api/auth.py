"""Wallet API authentication: `Authorization: Bearer <token>`. Only the
token's SHA-256 is stored (ApiToken.key_hash). Reuse it on any wallet
endpoint:

    authentication_classes = [WalletTokenAuthentication]
    permission_classes = [IsPayer]      # request.user.payer is the wallet
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_hash


class WalletTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword:
            return None
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("The bearer token is missing.")
        now = timezone.now()
        record = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=api_token_hash(token), revoked_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if record is None or not record.user.is_active:
            raise exceptions.AuthenticationFailed("The token is invalid, revoked or expired.")
        if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        return record.user, record

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class IsPayer(permissions.BasePermission):
    """The authenticated user holds a wallet (request.user.payer)."""

    message = "This endpoint is for wallet holders."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and hasattr(user, "payer"))

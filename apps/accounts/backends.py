"""Login with lockout: LOGIN_LOCKOUT_ATTEMPTS failures in a row lock the
account for LOGIN_LOCKOUT_SECONDS (each lockout a security event). Every
login (portal, admin, wallet API) goes through django.contrib.auth's
authenticate, so through here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied

from apps.accounts.models import User


class LockoutModelBackend(ModelBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        from apps.accounts.services import (
            login_failure_record,
            login_is_locked,
        )

        email = (username or kwargs.get("email") or "").strip().lower()
        if not email or password is None:
            return None
        user = User.objects.filter(email=email).first()
        if user is None:
            # Same cost as a real check, so timing does not reveal accounts.
            User().set_password(password)
            return None
        if login_is_locked(user):
            # PermissionDenied stops authenticate() at once: not even the
            # right password gets in while locked.
            raise PermissionDenied("locked")
        if user.check_password(password) and self.user_can_authenticate(user):
            # The failure count is reset only when the whole sign-in succeeds
            # (user_logged_in, after the second factor): a right password
            # followed by guessed codes must still run into the lockout.
            return user
        login_failure_record(user=user, request=request)
        return None


def _reset_failures_on_login(sender, request, user, **kwargs):  # type: ignore[no-untyped-def]
    from apps.accounts.services import login_success_record

    login_success_record(user=user)


user_logged_in.connect(_reset_failures_on_login, dispatch_uid="accounts-reset-login-failures")

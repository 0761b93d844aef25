"""The two steps of a staff sign-in (portal; the admin uses OTPAdminSite):
the password, with the login lockout, then a second factor. Between the two
nobody is signed in: the session only remembers, for a few minutes, whose
password was right."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _l

from apps.accounts import services
from apps.accounts.models import User

PENDING_USER_KEY = "otp_pending_user"
PENDING_AT_KEY = "otp_pending_at"
PENDING_NEXT_KEY = "otp_pending_next"
ENROL_DEVICE_KEY = "otp_enrol_device"
PENDING_SECONDS = 5 * 60
BACKEND = "apps.accounts.backends.LockoutModelBackend"


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, telling a locked account apart from a wrong password."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _l(
            "Too many failed sign-ins: this account is locked for %(minutes)d minutes. 登录失败次数过多，账户已暂时锁定。"
        ),
    }

    def clean(self) -> dict:
        try:
            return super().clean()
        except ValidationError:
            user = User.objects.filter(
                email=(self.cleaned_data.get("username") or "").strip().lower()
            ).first()
            if user is not None and services.login_is_locked(user):
                raise ValidationError(
                    self.error_messages["locked"],
                    code="locked",
                    params={"minutes": settings.LOGIN_LOCKOUT_SECONDS // 60},
                ) from None
            raise


def otp_login_begin(request: HttpRequest, user: User, *, next_url: str) -> HttpResponse:
    """The password was right: remember who is half signed in (for a few
    minutes) and ask for the second factor, or for setting one up."""
    request.session.cycle_key()
    request.session[PENDING_USER_KEY] = user.pk
    request.session[PENDING_AT_KEY] = int(time.time())
    request.session[PENDING_NEXT_KEY] = next_url
    name = "portal:login-otp" if services.otp_has_device(user) else "portal:login-otp-enrol"
    return redirect(name)


def pending_user(request: HttpRequest) -> User | None:
    pk, at = request.session.get(PENDING_USER_KEY), request.session.get(PENDING_AT_KEY)
    if pk is None or at is None or int(time.time()) - int(at) > PENDING_SECONDS:
        return None
    return User.objects.filter(pk=pk, is_active=True).first()

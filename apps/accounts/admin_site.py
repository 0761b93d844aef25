"""The Django admin as an OTP-required site: compliance signs in with email,
password and a code from their authenticator (django-otp's OTPAdminSite).
Installed through apps.accounts.apps.OTPAdminConfig, so every app's
`admin.site.register` / `@admin.register` keeps working unchanged."""

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext, gettext_noop, ngettext_lazy
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

# Names the admin shows that come from django-otp and from Django 5.2's new
# screen-reader headers, neither of which has a Chinese catalogue: listed
# here so that ours carries them (get_app_list and the admin templates look
# them up at render time).
BORROWED_NAMES = (
    gettext_noop("Otp_Totp"),
    gettext_noop("TOTP devices"),
    gettext_noop("Otp_Static"),
    gettext_noop("Static devices"),
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)


class AnfuAdminAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin sign-in form, its messages in our catalogue."""

    otp_error_messages = dict(
        OTPAdminAuthenticationForm.otp_error_messages,
        token_required=_("Enter the code from your authenticator app."),
        invalid_token=_("That code is not right: check your authenticator app and try again."),
        device_required=_("Choose an authenticator."),
        verification_not_allowed=_("Sign-in with a code is paused for now: try again soon."),
        n_failed_attempts=ngettext_lazy(
            "Sign-in with a code is paused after %(failure_count)d wrong code: try again soon.",
            "Sign-in with a code is paused after %(failure_count)d wrong codes: try again soon.",
            "failure_count",
        ),
    )


class AnfuAdminSite(OTPAdminSite):
    site_header = _("Anfu compliance")
    site_title = _("Anfu compliance")
    index_title = _("Compliance")
    login_template = "accounts/admin_login.html"
    login_form = AnfuAdminAuthenticationForm

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        for app in apps:  # see BORROWED_NAMES; our own names are translated already
            app["name"] = gettext(str(app["name"]))
            for model in app["models"]:
                model["name"] = gettext(str(model["name"]))
        return apps

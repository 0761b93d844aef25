"""The Django admin as an OTP-required site: compliance signs in with email,
password and a code from their authenticator (django-otp's OTPAdminSite).
Installed through apps.accounts.apps.OTPAdminConfig, so every app's
`admin.site.register` / `@admin.register` keeps working unchanged."""

from django_otp.admin import OTPAdminSite


class AnfuAdminSite(OTPAdminSite):
    site_header = "安付 Anfu compliance"
    site_title = "Anfu compliance"
    index_title = "Compliance"
    login_template = "accounts/admin_login.html"

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Users, merchants (the tenants), memberships and roles, payers, KYC/KYB, OTP, passwords."""

    default = True
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Registers the field-key check, the periodic task (wherever the beat
        # schedule is read) and the wallet token scheme with drf-spectacular.
        from apps.accounts import checks, tasks  # noqa: F401
        from apps.accounts.api import schema  # noqa: F401

        post_migrate.connect(_canary_write, sender=self)


def _canary_write(sender, using="default", **kwargs):  # type: ignore[no-untyped-def]
    # A fresh database gets its encryption canary as soon as it is migrated;
    # an existing one is checked (a wrong key stops `migrate` loudly).
    from apps.accounts.crypto import field_key_verify

    field_key_verify()


class OTPAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with an OTP-required default site."""

    default = False
    default_site = "apps.accounts.admin_site.AnfuAdminSite"

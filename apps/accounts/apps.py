from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, merchants (the tenants), memberships and roles, payers, KYC/KYB, OTP, passwords."""

    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

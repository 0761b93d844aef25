from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import TenantOwnedModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("a user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: merchant staff, compliance staff (is_staff) or a payer."""

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email"), unique=True)
    display_name = models.CharField(_("name"), max_length=100, blank=True)
    is_staff = models.BooleanField(_("compliance staff"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    # Login lockout (apps.accounts.backends): failures since the last success,
    # and the end of the current lock.
    failed_login_count = models.PositiveIntegerField(
        _("failed sign-ins"), default=0, editable=False
    )
    login_locked_until = models.DateTimeField(
        _("sign-in locked until"), null=True, blank=True, editable=False
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()


class Merchant(models.Model):
    """A merchant: the tenant. Every tenant-owned row points here."""

    class Status(models.TextChoices):
        ONBOARDING = "onboarding", _("onboarding")
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        CLOSED = "closed", _("closed")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ONBOARDING
    )
    mcc = models.CharField(_("merchant category code"), max_length=4, blank=True)
    # Merchant discount rate in basis points (38 = 0.38%).
    discount_rate_bp = models.PositiveIntegerField(_("discount rate (bp)"), default=38)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(discount_rate_bp__lte=10_000),
                name="merchant_rate_at_most_100pct",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("owner")
    MANAGER = "manager", _("manager")
    CASHIER = "cashier", _("cashier")
    VIEWER = "viewer", _("viewer")


# What each role may do in the portal and staff API. One table, read by the
# navigation, the views and the API alike.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(
        {
            "view_dashboard",
            "view_transactions",
            "refund",
            "view_statements",
            "manage_staff",
            "manage_terminals",
            "withdraw",
            "manage_merchant",
            "view_activity",
        }
    ),
    Role.MANAGER: frozenset(
        {
            "view_dashboard",
            "view_transactions",
            "refund",
            "view_statements",
            "manage_staff",
            "manage_terminals",
        }
    ),
    Role.CASHIER: frozenset({"view_dashboard", "view_transactions", "set_operator_pin"}),
    Role.VIEWER: frozenset({"view_dashboard", "view_transactions", "view_statements"}),
}


class Membership(TenantOwnedModel):
    """A user's role at one merchant."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "user"], name="membership_unique_per_merchant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"

    def can(self, capability: str) -> bool:
        return self.is_active and capability in ROLE_CAPABILITIES.get(self.role, frozenset())


class Shop(TenantOwnedModel):
    """A registered shop address of a merchant (part of its KYB), with the
    coordinates terminals are bound to and the business hours risk checks."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6)
    # Local (Asia/Shanghai) opening hours; closes < opens means past midnight.
    opens_at = models.TimeField(_("opens at"), default="08:00")
    closes_at = models.TimeField(_("closes at"), default="22:00")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latitude__gte=-90, latitude__lte=90), name="shop_latitude_range"
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__gte=-180, longitude__lte=180),
                name="shop_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Payer(models.Model):
    """A platform-wide wallet holder (not tenant-owned: one wallet pays at any
    merchant). The account class follows the approved real-name KYC."""

    class AccountClass(models.TextChoices):
        UNVERIFIED = "none", _("unverified")
        CLASS_I = "I", _("class I")
        CLASS_II = "II", _("class II")
        CLASS_III = "III", _("class III")

    public_id = models.UUIDField(_("public ID"), default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        User, on_delete=models.PROTECT, related_name="payer", verbose_name=_("user")
    )
    account_class = models.CharField(
        _("account class"),
        max_length=4,
        choices=AccountClass.choices,
        default=AccountClass.UNVERIFIED,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("payer")
        verbose_name_plural = _("payers")

    def __str__(self) -> str:
        return f"payer {self.public_id}"


class OperatorPin(TenantOwnedModel):
    """A cashier's transaction password (交易密码) as a salted verifier record:
    PBKDF2-HMAC-SHA256 over the 6-digit PIN. The same record is delivered to
    the merchant's terminals so they can check sign-ins offline; the server
    checks it for refunds and voids. See apps/accounts/pins.py."""

    membership = models.OneToOneField(
        Membership, on_delete=models.PROTECT, related_name="operator_pin"
    )
    salt = models.CharField(max_length=64)
    iterations = models.PositiveIntegerField()
    verifier = models.CharField(max_length=128)
    set_at = models.DateTimeField(default=timezone.now)
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("operator PIN")
        verbose_name_plural = _("operator PINs")

    def __str__(self) -> str:
        return f"PIN of {self.membership_id}"

"""Seeds a small demo: compliance staff and two merchants with their staff.
Later apps add their part (terminals, payers, payments) through DEMO_SEEDERS.
Idempotent: running it again changes nothing."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string

from apps.accounts.demo import demo_kyb_approve
from apps.accounts.models import Membership, Merchant, Role, User
from apps.accounts.services import membership_add, merchant_create
from config.env import env_bool

DEMO_MERCHANTS = [
    ("青柠咖啡 Lime Coffee", "5814", "lime"),
    ("山海书店 Shanhai Books", "5942", "shanhai"),
]
# Each later app appends a dotted path to a function(stdout) that seeds its part.
DEMO_SEEDERS: list[str] = [
    "apps.accounts.demo.demo_payers_seed",
    "apps.risk.demo.demo_risk_seed",
    "apps.transactions.demo.demo_wallets_seed",
    "apps.terminals.demo.demo_terminals_seed",
    "apps.transactions.demo.demo_payments_seed",
    "apps.transactions.demo.demo_monitor_seed",
]


DEFAULT_DEMO_PASSWORD = "anfu-demo-2026"  # noqa: S105 (published on purpose: development only)


class Command(BaseCommand):
    help = (
        "Seeds demo data. With DEBUG off only when asked explicitly "
        "(--allow-without-debug or ANFU_ALLOW_DEMO_SEED=1) and with DEMO_PASSWORD set."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="seed a production-like instance (DEBUG off) to try it; never a real one",
        )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "")
        if not settings.DEBUG:
            # A production-like instance: demo data only when the operator
            # says so, and never with the published demo password (the demo
            # compliance user is a superuser).
            if not (options["allow_without_debug"] or env_bool("ANFU_ALLOW_DEMO_SEED", False)):
                raise CommandError(
                    "DEBUG is off: seed_demo adds demo users and money only when asked "
                    "explicitly (--allow-without-debug or ANFU_ALLOW_DEMO_SEED=1)."
                )
            if not password or password == DEFAULT_DEMO_PASSWORD:
                raise CommandError(
                    "DEBUG is off: set DEMO_PASSWORD (not the published demo password) "
                    "for the demo users."
                )
            if not settings.ALLOWED_HOSTS:
                raise CommandError(
                    "DEBUG is off: set ALLOWED_HOSTS (no host is served without it)."
                )
        password = password or DEFAULT_DEMO_PASSWORD
        with transaction.atomic():
            if not User.objects.filter(email="compliance@anfu.test").exists():
                User.objects.create_superuser(
                    "compliance@anfu.test", password, display_name="合规 Compliance"
                )
            for name, mcc, slug in DEMO_MERCHANTS:
                self._merchant(name, mcc, slug, password)
        for path in DEMO_SEEDERS:
            import_string(path)(self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  portal login: owner@lime.test / {password}")
        self.stdout.write(f"  admin login:  compliance@anfu.test / {password}  (at /admin/)")
        self.stdout.write(
            "  every staff sign-in needs an authenticator code: the first portal sign-in sets one up"
        )

    def _merchant(self, name: str, mcc: str, slug: str, password: str) -> None:
        owner_email = f"owner@{slug}.test"
        if User.objects.filter(email=owner_email).exists():
            return
        owner = User.objects.create_user(owner_email, password, display_name=f"{slug} owner")
        merchant = merchant_create(name=name, owner=owner, mcc=mcc)
        # The real KYB flow (generated identities): approval makes it ACTIVE.
        compliance = User.objects.get(email="compliance@anfu.test")
        demo_kyb_approve(merchant=merchant, owner=owner, slug=slug, mcc=mcc, compliance=compliance)
        assert Merchant.objects.get(pk=merchant.pk).status == Merchant.Status.ACTIVE
        for role in (Role.MANAGER, Role.CASHIER, Role.VIEWER):
            user = User.objects.create_user(
                f"{role}@{slug}.test", password, display_name=f"{slug} {role}"
            )
            membership_add(merchant=merchant, user=user, role=role, actor=owner)
        assert Membership.objects.for_merchant(merchant).count() == 4

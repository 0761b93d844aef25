"""Demo identities for seed_demo: generated numbers with valid check digits
(apps.accounts.testdata), never a real person's or company's data. Every
merchant goes through the real KYB flow; payers through the real KYC flow."""

from __future__ import annotations

import datetime
import zlib
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts import services
from apps.accounts.models import KybApplication, KycApplication, Merchant, Payer, User
from apps.accounts.testdata import (
    generated_id_number,
    generated_phone,
    generated_png,
    generated_uscc,
)
from apps.accounts.validation import document_clean

# (email, display name, legal name, account class)
DEMO_PAYERS = [
    ("payer1@anfu.test", "王小明 (demo)", "测试王小明", Payer.AccountClass.CLASS_II),
    ("payer2@anfu.test", "李小红 (demo)", "测试李小红", Payer.AccountClass.CLASS_I),
]
# Shop coordinates per demo merchant slug (Beijing, Shanghai).
DEMO_SHOPS = {
    "lime": (
        "青柠咖啡 国贸店",
        "北京市朝阳区建国门外大街1号",
        Decimal("39.908700"),
        Decimal("116.459600"),
    ),
    "shanhai": (
        "山海书店 静安店",
        "上海市静安区南京西路1266号",
        Decimal("31.229000"),
        Decimal("121.452800"),
    ),
}


def _seq(text: str) -> int:
    return zlib.crc32(text.encode()) % 1000


def _doc(field: str, colour: str):  # type: ignore[no-untyped-def]
    return document_clean(
        SimpleUploadedFile(f"{field}.png", generated_png(colour), "image/png"), field=field
    )


def _person(seed: str, legal_name: str, birth: datetime.date) -> services.PersonInput:
    seq = _seq(seed)
    return services.person_clean(
        legal_name=legal_name,
        id_number=generated_id_number(seq, birth_date=birth),
        phone=generated_phone(seq),
        id_front=_doc("id_front", "lightblue"),
        id_back=_doc("id_back", "lightgrey"),
    )


def demo_kyb_approve(
    *, merchant: Merchant, owner: User, slug: str, mcc: str, compliance: User
) -> None:
    """Submits generated KYB for the merchant and approves it (legal rep first)."""
    if (
        KybApplication.objects.for_merchant(merchant)
        .filter(status=KybApplication.Status.APPROVED)
        .exists()
    ):
        return
    shop_name, address, lat, lon = DEMO_SHOPS.get(
        slug, (f"{merchant.name} shop", "北京市东城区", Decimal("39.9"), Decimal("116.4"))
    )
    kyb = services.kyb_submit(
        merchant=merchant,
        actor=owner,
        company_name=f"{merchant.name} (demo) 有限公司",
        uscc=generated_uscc(_seq(slug)),
        mcc=mcc,
        registered_address=address,
        licence=_doc("licence", "beige"),
        legal_rep=_person(f"rep-{slug}", f"测试{slug}法人", datetime.date(1980, 5, 20)),
        legal_rep_is_actor=True,
        shops=[services.ShopInput(name=shop_name, address=address, latitude=lat, longitude=lon)],
    )
    services.kyc_approve(
        kyc=kyb.legal_rep, actor=compliance, reason="demo data: generated identity"
    )
    services.kyb_approve(kyb=kyb, actor=compliance, reason="demo data: generated business")


def demo_payers_seed(stdout) -> None:  # type: ignore[no-untyped-def]
    """Demo payers with approved KYC (seed_demo's DEMO_SEEDERS entry)."""
    import os

    password = os.environ.get("DEMO_PASSWORD", "anfu-demo-2026")
    compliance = User.objects.filter(is_staff=True).order_by("pk").first()
    for email, display_name, legal_name, account_class in DEMO_PAYERS:
        user = User.objects.filter(email=email).first()
        payer = getattr(user, "payer", None) if user else None
        if payer is None:
            payer = services.payer_register(
                email=email, password=password, display_name=display_name
            )
        if KycApplication.objects.filter(user=payer.user).exists():
            continue
        kyc = services.payer_kyc_submit(
            payer=payer, person=_person(email, legal_name, datetime.date(1992, 8, 16))
        )
        services.kyc_approve(
            kyc=kyc,
            actor=compliance,
            reason="demo data: generated identity",
            account_class=account_class,
        )
    stdout.write(f"  demo payers: {', '.join(p[0] for p in DEMO_PAYERS)} (KYC approved)")
